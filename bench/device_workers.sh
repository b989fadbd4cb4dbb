#!/usr/bin/env bash
# Worker scaling (`streamproc bench workers`) on a lent many-core machine that has Python but
# no network: the runtime dependencies travel as wheels in ./.whl (which ones, and why, in
# bench/WORKERS-16CORE.md); streamproc itself is installed from this tree.
#
#   bash bench/device_workers.sh [OUT_DIR]        (run from the repository root)
#
# Environment: EVENTS (default 1000000), WORKER_COUNTS (default 1,2,4,8,12), PARTITIONS per
# source topic (default 16), BENCH_TIMEOUT seconds for the bench (default 480: a run that
# overstays still leaves its log, and the log has each K's rate as it finishes),
# SKIP_WHEELS=1 to use the packages already installed (a dev box).
set -u -o pipefail
out=${1:-${OUT:-/tmp/workers-out}}
mkdir -p "$out"
out=$(cd "$out" && pwd)
site=/tmp/site

main() {
    if [ "${SKIP_WHEELS:-0}" != 1 ]; then
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
            --upgrade --target "$site" .whl/*.whl || return 1
        export PYTHONPATH=$site
        # streamproc.bench and streamproc.topics live in bench/ and topics/ (package-dir),
        # so PYTHONPATH=. would not find them: install the tree (no deps, no network).
        if ! python3 -m pip install -q --no-index --no-deps --no-build-isolation \
                --no-cache-dir --target "$site" . ; then
            echo "pip install of the tree failed; laying the package out by hand"
            rm -rf "$site/streamproc"
            cp -r streamproc "$site/streamproc"
            cp -r bench "$site/streamproc/bench"
            cp -r topics "$site/streamproc/topics"
        fi
    fi
    export PYTHONUNBUFFERED=1
    # Out of the tree: from its root, ./streamproc (which has no bench/) would shadow the
    # installed package.
    cd /tmp || return 1

    echo "== machine"
    echo "nproc: $(nproc)"
    uname -a
    python3 --version
    command -v python3
    grep -m1 "model name" /proc/cpuinfo
    free -g | head -2
    uptime
    python3 - <<'PY' || return 1
import streamproc.bench.workers  # noqa: F401  (the scenario imports)
from streamproc.bench.common import versions
from streamproc.ops.broker import tansu_binary
print("versions:", versions())
print("tansu:", tansu_binary())
PY

    echo "== bench"
    export STREAMPROC_BENCH_WORKER_COUNTS=${WORKER_COUNTS:-1,2,4,8,12}
    export STREAMPROC_BENCH_PARTITIONS=${PARTITIONS:-16}
    local cmd=(python3 -m streamproc.commands.cli bench workers --events "${EVENTS:-1000000}" --runs 1
               --out "$out")
    echo "STREAMPROC_BENCH_WORKER_COUNTS=$STREAMPROC_BENCH_WORKER_COUNTS" \
         "STREAMPROC_BENCH_PARTITIONS=$STREAMPROC_BENCH_PARTITIONS ${cmd[*]}"
    local start rc
    start=$(date +%s)
    timeout "${BENCH_TIMEOUT:-480}" "${cmd[@]}"
    rc=$?
    echo "bench exit status $rc after $(( $(date +%s) - start )) s"
    uptime
    return $rc
}

main 2>&1 | tee "$out/log"
exit "${PIPESTATUS[0]}"

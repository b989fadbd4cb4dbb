"""What the way to the first record judged imports. Each import costs start-up time (Apprise
and its plugins alone about 0.3 s), so a library that only delivery, HTTP, rules or charts
use is imported where it is first needed, not by ``streamproc run`` before it judges.

Each check runs in a new interpreter, as ``streamproc run`` starts: what an earlier test
imported into this one would hide an import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import streamproc

# imported by the judging side of a run that needs none of them: delivery (Apprise with
# requests), the HTTP listener (aiohttp), Sigma rules (pySigma), charts and tables
HEAVY = ("apprise", "requests", "aiohttp", "sigma", "matplotlib", "rich")

# the judging side of `streamproc run`, in the order runner.main takes it: the command line,
# the config checked (every section, notify included), where HTTP is served, the Runtime
# with its Judge (every binding's decoder and detectors)
RUN_PATH = r"""
import json, sys
from streamproc.commands.cli import build_parser
args = build_parser().parse_args(["run", *sys.argv[2:]])
from streamproc.commands.run import main
from streamproc.commands.check_config import load_checked
from streamproc.pipeline.runtime import Runtime
from streamproc.commands.workers import listen_address
config, _channels = load_checked(sys.argv[1] or None)
listen_address(args)
Runtime(config)
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


def _imported(code: str, *argv: str, cwd: Path) -> set[str]:
    """The top-level packages imported by ``code`` in a new interpreter."""
    home = str(Path(streamproc.__file__).resolve().parent.parent)  # this checkout
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(p for p in (home, os.environ.get("PYTHONPATH")) if p)
    )
    env.pop("STREAMPROC_CONFIG", None)
    out = subprocess.run(
        [sys.executable, "-c", code, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_importing_the_runtime_and_its_metrics_imports_no_delivery_http_rule_or_chart_library(
    tmp_path: Path,
) -> None:
    # the metrics themselves need prometheus_client only; their routes need aiohttp
    code = (
        "import json, sys\n"
        "import streamproc.pipeline.runtime, streamproc.commands.run, streamproc.ops.metrics\n"
        "streamproc.ops.metrics.Metrics()\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    assert _imported(code, cwd=tmp_path) & set(HEAVY) == set()


def test_a_run_of_the_default_config_judges_without_importing_a_library_it_does_not_need(
    tmp_path: Path,
) -> None:
    # no notify URL, no rule, no --listen: the embedded default and the demo
    assert _imported(RUN_PATH, "", "--demo", cwd=tmp_path) & set(HEAVY) == set()


@pytest.mark.parametrize(
    ("section", "needs"),
    [
        ('notify: {urls: ["json://127.0.0.1:9/hook"]}', "apprise"),
        ("sigma: [sigma/]", "sigma"),
    ],
)
def test_what_the_config_names_is_checked_with_its_library_before_the_run_starts(
    tmp_path: Path, section: str, needs: str
) -> None:
    # the same probe sees an import when the config needs it: a notify URL is loaded by
    # Apprise, a Sigma rule parsed by pySigma, before the worker consumes anything
    (tmp_path / "sigma").mkdir()
    (tmp_path / "sigma" / "r.yml").write_text(
        "title: Admin path\nid: 00000000-0000-4000-8000-000000000001\nstatus: test\n"
        "level: high\nlogsource: {category: webserver}\n"
        "detection: {sel: {cs-uri-stem|contains: /admin}, condition: sel}\n"
    )
    config = tmp_path / "streamproc.yaml"
    config.write_text(section + "\n")
    assert needs in _imported(RUN_PATH, str(config), cwd=tmp_path)


def test_listening_imports_the_http_listener(tmp_path: Path) -> None:
    assert "aiohttp" in _imported(RUN_PATH, "", "--listen", "127.0.0.1:0", cwd=tmp_path)

"""detect: all detectors, decode included, one process, in memory, a mixed six-family stream.

A second row, lines by pattern: format regex (a user's pattern, one field mapped) against
format combined, per line in the same run, with format sshd alongside (target: regex at most
2x the time of combined).

Baseline (same invocation): ``orjson.loads`` of the same records, nothing else. The ratio says
what share of the time a bare decode would take; the absolute rate is what sizes a deployment
(target: both, >= 300,000 events/s on one core and >= 0.30x of orjson.loads: a fast machine
alone does not meet it).

The stream is what ``streamproc produce --scenario mixed`` makes (Zipf users and IPs, diurnal
load, injected incidents); every run checks that exactly the expected alerts appeared.

With ``--sigma DIR`` (``bench/sigma`` holds 100 rules), a third row: the time to judge the
api-access-logs stream (``--scenario api``, decoded once beforehand) by the Sigma rules of
DIR alone, against the built-in api-access-logs detectors alone on the same events, in the
same run (target: at most 2x).
"""

from __future__ import annotations

import gc
import time
from typing import Any

import orjson

from .common import Context, Row, verify_counts

DEFAULT_EVENTS = 1_000_000
BATCH = 5000
TARGET = 300_000.0
RATIO_TARGET = 0.30


def build_records(ctx: Context, n: int) -> list[Any]:
    from streamproc.contracts import get_contract
    from streamproc.decode import RawRecord

    topics = {}
    out = []
    for i, (fam, key, value) in enumerate(ctx.merged_bytes("mixed", n)):
        topic = topics.get(fam)
        if topic is None:
            topic = topics[fam] = get_contract(fam).kafka_topic
        out.append(RawRecord(value, topic, 0, i, key))
    return out


def judge_all(records: list[Any]) -> tuple[float, list[Any], dict[str, int]]:
    """Decode and detect every record through the runtime's Judge; (seconds, alerts, dead)."""
    from streamproc.config import load_config
    from streamproc.pipeline.runtime import Judge, tune_gc

    judge = Judge(load_config(None), partitioned=False)
    tune_gc()  # as Runtime.start does: measure what a deployment gets
    alerts: list[Any] = []
    dead: dict[str, int] = {}
    gc.collect()
    start = time.perf_counter()
    for i in range(0, len(records), BATCH):
        out, dls = judge.judge(records[i : i + BATCH], "kafka")
        if out:
            alerts.extend(out)
        for dl in dls:
            dead[dl.reason] = dead.get(dl.reason, 0) + 1
    alerts.extend(judge.finish())
    return time.perf_counter() - start, alerts, dead


def decode_only(records: list[Any]) -> float:
    loads = orjson.loads
    gc.collect()
    start = time.perf_counter()
    for r in records:
        loads(r.value)
    return time.perf_counter() - start


def run(ctx: Context) -> list[Row]:
    n = ctx.n(DEFAULT_EVENTS)
    traffic = ctx.traffic("mixed", n)
    records = build_records(ctx, n)
    n = len(records)
    row = Row(
        "detect",
        "all detectors + decode, 1 process",
        "events/s",
        baseline_name="orjson.loads alone",
        target=f">= {TARGET:,.0f} events/s and >= {RATIO_TARGET:.2f}x",
        target_check=lambda r: (r.median or 0) >= TARGET and (r.ratio or 0) >= RATIO_TARGET,
    )
    row.extra["events"] = n
    row.extra["families"] = {f: len(v) for f, v in traffic.records.items()}
    verified: dict[str, Any] | None = None
    from streamproc.pipeline.runtime import tune_gc

    tune_gc()  # the baseline runs under the same collector settings as the judge
    for i in range(ctx.runs):
        base = decode_only(records)
        row.baseline_runs.append(n / base)
        ctx.step(f"detect run {i + 1}/{ctx.runs}: baseline {n / base:,.0f}/s")
        seconds, alerts, dead = judge_all(records)
        row.runs.append(n / seconds)
        check = verify_counts(traffic.expected, alerts)
        if dead:
            check["ok"] = False
            check["dead_letters"] = dead
        # Every run must be right, not just the last one.
        if verified is None or not check["ok"]:
            verified = check
        ctx.step(
            f"detect run {i + 1}/{ctx.runs}: {n / seconds:,.0f}/s, "
            f"{len(alerts)} alerts, verified={check['ok']}"
        )
        del alerts
    row.verified = verified
    rows = [row, line_formats(ctx)]
    if getattr(ctx, "sigma", None):
        rows.append(sigma_rules(ctx, ctx.sigma))
    return rows


# -- Sigma rules against the built-in detectors, on api-access-logs ------------------------

SIGMA_EVENTS = 200_000
SIGMA_RATIO_TARGET = 2.0


def api_events(ctx: Context, n: int) -> list[Any]:
    from streamproc.commands.replay import binding_for
    from streamproc.config import load_config
    from streamproc.decode import BatchDecoder

    lines = [v for fam, _, v in ctx.merged_bytes("api", n) if fam == "api-access-logs"]
    decoder = BatchDecoder.for_binding(binding_for(load_config(None), "api-access-logs"))
    events: list[Any] = []
    for i in range(0, len(lines), BATCH):
        chunk = lines[i : i + BATCH]
        got, _ = decoder.decode_batch(chunk, "api-access-logs", 0, list(range(i, i + len(chunk))))
        events.extend(got)
    return events


def judge_events(detectors: list[Any], events: list[Any]) -> tuple[float, int]:
    """Seconds to judge ``events`` with an engine of ``detectors``, and its alerts."""
    from streamproc.detectors import DetectorEngine

    engine = DetectorEngine(detectors)
    gc.collect()
    start = time.perf_counter()
    alerts = 0
    for i in range(0, len(events), BATCH):
        alerts += len(engine.process(events[i : i + BATCH])[0])
    alerts += len(engine.finish())
    return time.perf_counter() - start, alerts


def sigma_rules(ctx: Context, folder: str) -> Row:
    from streamproc.commands.replay import binding_for
    from streamproc.config import load_config
    from streamproc.detectors import build_detectors
    from streamproc.rules import add_rules

    n = ctx.n(SIGMA_EVENTS)
    events = api_events(ctx, n)
    plain = load_config(None)
    binding = binding_for(plain, "api-access-logs")
    with_sigma = load_config(None)
    add_rules(with_sigma, sigma=[folder])
    count = len(with_sigma.rules.for_family("api-access-logs"))
    row = Row(
        "detect",
        f"{count} Sigma rules (api-access-logs)",
        "events/s",
        baseline_name="built-in api-access-logs detectors",
        target=f"<= {SIGMA_RATIO_TARGET:g}x the built-ins' judging time",
        target_check=lambda r: (r.baseline_median or 0) <= SIGMA_RATIO_TARGET * (r.median or 0),
    )
    row.extra.update(events=len(events), rules=count, skipped=len(with_sigma.rules.skipped))
    alerts: list[int] = []
    for i in range(ctx.runs):
        builtin, _ = judge_events(build_detectors(plain, binding), events)
        rules = [d for d in build_detectors(with_sigma, binding) if d.kind.startswith("sigma:")]
        sigma, fired = judge_events(rules, events)
        row.baseline_runs.append(len(events) / builtin)
        row.runs.append(len(events) / sigma)
        alerts.append(fired)
        ctx.step(
            f"sigma run {i + 1}/{ctx.runs}: built-ins {len(events) / builtin:,.0f}/s, "
            f"{count} Sigma rules {len(events) / sigma:,.0f}/s "
            f"({sigma / builtin:.2f}x the time), {fired} alerts"
        )
    row.extra["sigma_alerts"] = alerts
    return row


# -- lines by pattern: format regex and sshd against format combined, per line -------------

LINES = 100_000
LINE_RATIO_TARGET = 2.0
# a user's regex onto auth-logs, as the README shows one
VPN_REGEX = (
    r"^(?P<timestamp>\S+) vpn\[(?P<pid>\d+)\]: login (?P<result>ok|failed) "
    r"user=(?P<username>\S+) src=(?P<ip_address>\S+) port=(?P<port>\d+)$"
)


def sample_lines(n: int) -> dict[str, list[bytes]]:
    """``n`` lines of each format, varied as a busy host writes them (users, addresses,
    seconds, paths)."""
    out: dict[str, list[bytes]] = {"combined": [], "regex": [], "sshd": []}
    for i in range(n):
        ip = f"198.51.{i % 251}.{i * 7 % 253}"
        user = f"user{i * 13 % 997}"
        s, m = i % 60, i // 60 % 60
        out["combined"].append(
            f'{ip} - - [29/Nov/2026:17:{m:02d}:{s:02d} +0000] "GET /api/v1/items/{i % 5000}?'
            f'page={i % 9} HTTP/1.1" 200 {512 + i % 4096} "-" "Mozilla/5.0 (X11; Linux '
            f'x86_64) AppleWebKit/537.36"'.encode()
        )
        out["regex"].append(
            f"2026-11-29T17:{m:02d}:{s:02d}Z vpn[{4000 + i % 97}]: login "
            f"{'failed' if i % 3 else 'ok'} user={user} src={ip} "
            f"port={1024 + i % 60000}".encode()
        )
        verb = "Failed password" if i % 3 else "Accepted publickey"
        out["sshd"].append(
            f"Nov 29 17:{m:02d}:{s:02d} bastion sshd[{4000 + i % 97}]: {verb} "
            f"for {user} from {ip} port {1024 + i % 60000} ssh2".encode()
        )
    return out


def line_decoders() -> dict[str, Any]:
    from streamproc.config import parse_config_text
    from streamproc.decode import BatchDecoder

    config = parse_config_text(f"""
topics:
  - {{topic: web, family: api-access-logs, format: combined}}
  - topic: vpn
    family: auth-logs
    format: {{regex: '{VPN_REGEX}'}}
    fields: {{success: {{path: result, map: {{ok: true, failed: false}}}}}}
  - {{topic: ssh, family: auth-logs, format: {{name: sshd, year: 2026}}}}
""")
    return {
        fmt: BatchDecoder.for_binding(b)
        for fmt, b in zip(("combined", "regex", "sshd"), config.bindings, strict=True)
    }


def decode_lines(decoder: Any, lines: list[bytes]) -> float:
    """Seconds to decode ``lines`` into Events (every one must be an Event)."""
    gc.collect()
    decode = decoder.decode
    start = time.perf_counter()
    out = [decode(line) for line in lines]
    seconds = time.perf_counter() - start
    bad = [o for o in out if not hasattr(o, "ts")]
    if bad:
        raise RuntimeError(f"a sample line did not decode: {bad[0]}")
    return seconds


def line_formats(ctx: Context) -> Row:
    """Lines decoded per second with format regex (a user's pattern, a field mapped) against
    format combined in the same run; sshd alongside (``extra``)."""
    n = min(ctx.n(LINES), LINES)
    lines = sample_lines(n)
    decoders = line_decoders()
    row = Row(
        "detect",
        "lines decoded: format regex (mapped)",
        "lines/s",
        baseline_name="format combined",
        higher_is_better=True,
        target=f"regex <= {LINE_RATIO_TARGET:g}x the time of combined per line",
        target_check=lambda r: (r.baseline_median or 0) <= LINE_RATIO_TARGET * (r.median or 0),
    )
    sshd_runs: list[float] = []
    for i in range(ctx.runs):
        combined = decode_lines(decoders["combined"], lines["combined"])
        regex = decode_lines(decoders["regex"], lines["regex"])
        sshd = decode_lines(decoders["sshd"], lines["sshd"])
        row.baseline_runs.append(n / combined)
        row.runs.append(n / regex)
        sshd_runs.append(n / sshd)
        ctx.step(
            f"lines run {i + 1}/{ctx.runs}: combined {n / combined:,.0f}/s, regex "
            f"{n / regex:,.0f}/s ({regex / combined:.2f}x), sshd {n / sshd:,.0f}/s "
            f"({sshd / combined:.2f}x)"
        )
    row.extra["lines"] = n
    row.extra["sshd_lines_per_s"] = sshd_runs
    return row


STEPS_PER_RUN = 3

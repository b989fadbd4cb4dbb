"""The bench chart: one PNG, one panel per question that the run has rows for.

The rows here are built with the scenario modules' own ``Row`` and the names, units, targets
and ``extra`` keys those modules write, so a chart drawn from them is a chart of a real
results.json with every scenario in it.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("matplotlib")

from streamproc.bench import chart
from streamproc.bench.common import Row, skipped

MACHINE = {
    "cpu": "AMD EPYC",
    "cores_usable": 2,
    "memory_gib": 23.5,
    "python": "3.11.7",
    "platform": "Linux-6.18-x86_64",
    "loadavg": [0.59, 1.0, 1.1],
    "time_utc": "2026-11-26T11:02:38Z",
}
EVERY_PANEL = ["throughput", "latency", "state", "workers", "peers"]


def _at_least(target: float) -> Any:
    return lambda r: (r.median or 0) >= target


def _ratio_at_least(target: float) -> Any:
    return lambda r: (r.ratio or 0) >= target


def _at_most(target: float) -> Any:
    return lambda r: (r.median or 1e9) <= target


def every_scenario() -> list[Row]:
    """One run's rows for every scenario, shaped as the scenario modules write them."""
    detect = [
        Row(
            "detect",
            "all detectors + decode, 1 process",
            "events/s",
            runs=[53_300, 49_000, 54_100],
            baseline_name="orjson.loads alone",
            baseline_runs=[595_103, 560_000, 620_000],
            target=">= 300,000 events/s",
            target_check=_at_least(300_000),
        ),
        Row(
            "detect",
            "12 Sigma rules (api-access-logs)",
            "events/s",
            runs=[210_000, 200_000],
            baseline_name="built-in api-access-logs detectors",
            baseline_runs=[250_000, 240_000],
            target="<= 2x the built-ins' judging time",
            target_check=lambda r: r.baseline_median <= 2 * r.median,
        ),
        Row(
            "detect",
            "lines decoded: format regex (mapped)",
            "lines/s",
            runs=[54_160, 52_000],
            baseline_name="format combined",
            baseline_runs=[23_950, 24_100],
            target="regex <= 2x the time of combined per line",
            target_check=lambda r: r.baseline_median <= 2 * r.median,
        ),
    ]
    state = [
        Row(
            "state",
            "brute_force bytes per tracked key",
            "bytes/key",
            runs=[193.3, 193.2],
            higher_is_better=False,
            target="<= 300 bytes/key",
            target_check=_at_most(300),
        ),
        Row(
            "state",
            "brute_force checkpoint (snapshot + orjson)",
            "s",
            runs=[4.1, 3.9],
            higher_is_better=False,
        ),
        Row(
            "state",
            "brute_force restore (orjson + restore)",
            "s",
            runs=[5.2, 5.0],
            higher_is_better=False,
        ),
    ]
    for kind, size in (("host_silent", 248.0), ("sla_breach", 275.0), ("rate_abuse", 315.0)):
        state.append(
            Row(
                "state",
                f"{kind} bytes per tracked key (1 run)",
                "bytes/key",
                runs=[size],
                higher_is_better=False,
                target="<= 300 bytes/key",
                target_check=_at_most(300),
            )
        )
    notify = [
        Row(
            "notify",
            "deliveries/s, 5 channels x 20 ms",
            "deliveries/s",
            runs=[1855.6, 1700.0],
            baseline_name="sequential Apprise.notify",
            baseline_runs=[142.0, 140.0],
            target=">= 500/s and >= 10x baseline",
            target_check=lambda r: r.median >= 500 and r.ratio >= 10,
        ),
        Row(
            "notify",
            "delivery latency p99 (submit -> receiver)",
            "ms",
            runs=[4693.3, 4500.0],
            higher_is_better=False,
        ),
        Row(
            "notify",
            "delivery latency p50 (submit -> receiver)",
            "ms",
            runs=[3359.9, 3200.0],
            higher_is_better=False,
        ),
    ]
    mqtt = [
        Row(
            "mqtt",
            "QoS 0 events/s through MqttSource (+orjson)",
            "events/s",
            runs=[5631.0, 5400.0],
            baseline_name="bare aiomqtt subscriber (+orjson)",
            baseline_runs=[3896.0, 3800.0],
            target=">= 80% of bare",
            target_check=_ratio_at_least(0.8),
        ),
        Row(
            "mqtt",
            "QoS 1 events/s through MqttSource (+orjson, acks)",
            "events/s",
            runs=[5493.0],
            baseline_name="bare aiomqtt subscriber (+orjson)",
            baseline_runs=[3260.0],
        ),
    ]
    by_kind = {
        "brute_force": {"alerts": 24, "p50_ms": 194.0, "p99_ms": 337.0},
        "sla_breach": {"alerts": 54, "p50_ms": 325.0, "p99_ms": 8465.0},
        "deployment": {"alerts": 990, "p50_ms": 174.0, "p99_ms": 329.0},
    }
    kafka = [
        Row(
            "kafka",
            "consume+decode+detect+alert log, commits+checkpoints",
            "events/s",
            runs=[34_994.0, 33_000.0],
            baseline_name="raw aiokafka getmany",
            baseline_runs=[216_685.0, 300_000.0],
            target=">= 60% of raw",
            target_check=_ratio_at_least(0.6),
        ),
        Row(
            "kafka",
            "produce, pre-built batches (create_batch/send_batch)",
            "records/s",
            runs=[218_996.0],
        ),
        Row(
            "kafka",
            "alert latency p99 at 50% of sustained rate",
            "ms",
            runs=[348.2],
            higher_is_better=False,
            target="<= 250 ms",
            target_check=_at_most(250),
            extra={
                "by_kind": by_kind,
                "rate": 17_497.0,
                "alerts": 14_942,
                "timed_alerts": 14_942,
                "p50_ms": 180.0,
                "p99_ms": 348.2,
            },
        ),
        Row(
            "kafka",
            "alert latency p50 at 50% of sustained rate",
            "ms",
            runs=[180.0],
            higher_is_better=False,
            extra={"rate": 17_497.0},
        ),
    ]
    workers = [
        Row(
            "workers",
            "1 worker, events/s (committed)",
            "events/s",
            runs=[23_713.0, 24_000.0],
            extra={"cores": 2, "worker_counts": [1, 2, 4], "partitions": 6},
        ),
        Row(
            "workers",
            "2 workers, events/s (committed)",
            "events/s",
            runs=[36_941.0, 46_000.0],
            baseline_name="1 worker",
            baseline_runs=[23_713.0, 24_000.0],
        ),
        Row(
            "workers",
            "4 workers, events/s (committed)",
            "events/s",
            runs=[41_000.0, 40_000.0],
            baseline_name="1 worker",
            baseline_runs=[23_713.0, 24_000.0],
        ),
    ]
    runners = {
        "raw": {
            "runs": [
                {"events_per_s": r, "first_record_s": 0.12, "peak_rss_mb": 56.0}
                for r in (395_931.0, 602_957.0, 321_933.0)
            ]
        },
        "streamproc": {
            "runs": [
                {"events_per_s": r, "first_record_s": 7.0, "peak_rss_mb": 98.0}
                for r in (117_108.0, 153_794.0, 163_491.0)
            ]
        },
        "bytewax": {
            "runs": [
                {"events_per_s": r, "first_record_s": 0.68, "peak_rss_mb": 297.0}
                for r in (207_233.0, 206_367.0, 211_091.0)
            ]
        },
    }
    sp = [117_108.0, 153_794.0, 163_491.0]
    peers = [
        Row(
            "peers",
            "streamproc run, brute_force only, 1 worker, commits+checkpoints+alert log",
            "events/s",
            runs=sp,
            baseline_name="raw aiokafka getmany, count only",
            baseline_runs=[395_931.0, 602_957.0, 321_933.0],
            target=">= 0.65x raw",
            target_check=_ratio_at_least(0.65),
            extra={"runners": runners},
        ),
        Row(
            "peers",
            "streamproc run vs Bytewax, same rule",
            "events/s",
            runs=sp,
            baseline_name="Bytewax 0.21.1 (stateful_map, KafkaSink)",
            baseline_runs=[207_233.0, 206_367.0, 211_091.0],
            target=">= 2x Bytewax",
            target_check=_ratio_at_least(2.0),
        ),
        Row(
            "peers",
            "streamproc run: process start to first record judged",
            "s",
            runs=[7.1, 6.9, 7.0],
            higher_is_better=False,
            baseline_name="raw getmany: start to first record",
            baseline_runs=[0.31, 0.11, 0.13],
            target="<= 2 s",
            target_check=_at_most(2),
            extra={"bytewax_first_record_s": 0.68},
        ),
        Row(
            "peers",
            "streamproc run: peak RSS",
            "MB",
            runs=[109.0, 98.0, 92.0],
            higher_is_better=False,
            baseline_name="raw getmany: peak RSS",
            baseline_runs=[56.0, 60.6, 56.4],
            target="<= 150 MB",
            target_check=_at_most(150),
            extra={"bytewax_peak_rss_mb": 297.0},
        ),
    ]
    startup = [
        Row(
            "startup",
            "run --demo: first record judged (embedded broker)",
            "s",
            runs=[1.6, 1.7],
            higher_is_better=False,
            baseline_name="raw aiokafka client, new process: first record (no group)",
            baseline_runs=[0.4, 0.5],
            target="<= 2 s",
            target_check=_at_most(2),
        )
    ]
    ingest = [
        Row(
            "ingest",
            "POST /api/v1/events, 1 event per request, 8 keep-alive connections (judged at once)",
            "events/s",
            runs=[4200.0, 4100.0],
            baseline_name="bare aiohttp server answering 204 (body read)",
            baseline_runs=[9000.0, 8800.0],
            target=">= 5,000 events/s on one server core",
            target_check=lambda r: True,
        ),
        Row(
            "ingest",
            "POST /api/v1/events, NDJSON of 1,000 events, 8 keep-alive "
            "connections (judged at once)",
            "events/s",
            runs=[150_000.0, 140_000.0],
            baseline_name="bare aiohttp server answering 204 (body read)",
            baseline_runs=[900_000.0, 880_000.0],
            target=">= 50,000 events/s on one server core",
            target_check=lambda r: True,
        ),
    ]
    return [*detect, *state, *notify, *mqtt, *kafka, *workers, *peers, *startup, *ingest]


def results_json(rows: list[Row]) -> dict[str, Any]:
    from streamproc.bench.common import machine_line

    return {
        "command": "streamproc bench",
        "machine": MACHINE,
        "machine_line": machine_line(MACHINE),
        "versions": {},
        "params": {},
        "started_utc": MACHINE["time_utc"],
        "seconds": 60.0,
        "results": [r.to_dict() for r in rows],
    }


def _panels(rows: list[dict[str, Any]]) -> list[str]:
    fig = chart.render(rows, MACHINE)
    try:
        return [sf.get_label() for sf in fig.subfigs]
    finally:
        chart._plt().close(fig)


def _texts(rows: list[dict[str, Any]]) -> str:
    from matplotlib.text import Text

    fig = chart.render(rows, MACHINE)
    try:
        return "\n".join(t.get_text() for t in fig.findobj(Text))
    finally:
        chart._plt().close(fig)


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_a_run_with_every_scenario_is_one_png_with_one_panel_per_question(tmp_path: Path) -> None:
    source = tmp_path / "results.json"
    source.write_text(json.dumps(results_json(every_scenario())))
    assert chart.main([str(source)]) == 0
    width, height = _png_size(tmp_path / "results.png")
    assert width == 1000 and height > 1500, (width, height)
    assert _panels(json.loads(source.read_text())["results"]) == EVERY_PANEL


def test_only_the_scenarios_present_get_a_panel(tmp_path: Path) -> None:
    rows = [r.to_dict() for r in every_scenario()]

    def of(*scenarios: str) -> list[dict[str, Any]]:
        return [r for r in rows if r["scenario"] in scenarios]

    assert _panels(of("detect", "state")) == ["throughput", "state"]
    assert _panels(of("workers")) == ["workers"]
    assert _panels(of("notify")) == ["throughput", "latency"]
    assert _panels(of("peers")) == ["throughput", "peers"]
    assert _panels(of("startup")) == []
    written = chart.write_charts(of("startup"), str(tmp_path / "results.png"), MACHINE)
    assert written == [str(tmp_path / "results.png")]
    assert _png_size(tmp_path / "results.png")[0] == 1000


def test_the_figure_title_carries_the_machine_line() -> None:
    from streamproc.bench.common import machine_line

    assert machine_line(MACHINE) in _texts([r.to_dict() for r in every_scenario()])


def test_each_bar_pair_prints_its_ratio_and_the_peers_panel_its_targets() -> None:
    rows = [r.to_dict() for r in every_scenario()]
    text = _texts(rows)
    for r in rows:
        if (
            r["scenario"] in ("detect", "kafka", "mqtt", "notify", "ingest", "peers")
            and r["unit"].endswith("/s")
            and r["ratio"] is not None
        ):
            assert chart._ratio(r["ratio"]) in text, r["name"]
    assert "0.65x raw" in text and "2x Bytewax" in text
    assert "<= 250 ms" in text  # the kafka p99 target, beside its latency dots
    assert "sla_breach (54)" in text  # latency per alert kind


def test_a_failed_or_skipped_scenario_keeps_its_panel_and_says_why() -> None:
    detect = Row(
        "detect",
        "all detectors + decode, 1 process",
        "events/s",
        runs=[2.0, 3.0],
        baseline_name="orjson.loads alone",
        baseline_runs=[4.0],
        target=">= 60% of raw",
    ).to_dict()
    failed = Row("workers", "scenario failed", "-", error="RuntimeError: boom").to_dict()
    skip = skipped("state", "x bytes per tracked key", "not installed").to_dict()
    no_bytewax = skipped(
        "peers", "streamproc run vs Bytewax, same rule", "bytewax is not installed"
    ).to_dict()
    rows = [detect, failed, skip, no_bytewax]
    assert _panels(rows) == ["throughput", "state", "workers", "peers"]
    text = _texts(rows)
    assert "FAILED: RuntimeError: boom" in text
    assert "not run: not installed" in text
    assert "not run: bytewax is not installed" in text


def _shown(axis: Any) -> list[Any]:
    """The tick labels an axis draws: those of ticks inside its view, with text."""
    lo, hi = sorted(axis.get_view_interval())
    return [
        label
        for loc, label in zip(axis.get_majorticklocs(), axis.get_ticklabels(), strict=True)
        if lo <= loc <= hi and label.get_visible() and label.get_text()
    ]


def test_labels_fit_the_figure_and_do_not_overlap() -> None:
    from matplotlib.text import Text

    fig = chart.render([r.to_dict() for r in every_scenario()], MACHINE)
    try:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        page = fig.bbox
        for t in fig.findobj(Text):
            if not t.get_visible() or not t.get_text():
                continue
            box = t.get_window_extent(renderer)
            assert page.x0 - 1 <= box.x0 and box.x1 <= page.x1 + 1, t.get_text()
        for ax in fig.get_axes():
            for axis in (ax.xaxis, ax.yaxis):
                boxes = [t.get_window_extent(renderer) for t in _shown(axis)]
                for a, b in itertools.pairwise(boxes):
                    assert not a.overlaps(b), [t.get_text() for t in _shown(axis)]
        for sf in fig.subfigs:  # a panel's own lines of text stay clear of its axes' labels
            ticks = [
                (t.get_text(), t.get_window_extent(renderer))
                for ax in sf.axes
                for t in (*_shown(ax.xaxis), *_shown(ax.yaxis))
            ]
            for note in sf.texts:
                box = note.get_window_extent(renderer)
                for tick, tick_box in ticks:
                    assert not box.overlaps(tick_box), (sf.get_label(), note.get_text(), tick)
    finally:
        chart._plt().close(fig)


@pytest.mark.parametrize(
    ("target", "baseline", "values"),
    [
        (">= 300,000 events/s", None, [300_000.0]),
        (">= 60% of raw", 4.0, [2.4]),
        (">= 0.65x raw", 100.0, [65.0]),
        (">= 500/s and >= 10x baseline", 20.0, [500.0, 200.0]),
        ("<= 2x the built-ins' judging time", 100.0, [50.0]),  # a time target on a rate axis
        (">= 5,000 events/s on one server core", 9000.0, []),  # per core: not on this axis
    ],
)
def test_a_target_becomes_values_on_the_rows_own_axis(
    target: str, baseline: float | None, values: list[float]
) -> None:
    row = {"target": target, "baseline_median": baseline}
    assert [v for v, _ in chart.target_values(row)] == pytest.approx(values)

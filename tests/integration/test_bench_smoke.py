"""Smoke test of ``streamproc bench``: every scenario runs with a tiny N and the harness writes
what it promises. No timing is asserted (performance is the benchmark's job, not a test's);
what is asserted is that the machinery works and that answers were checked: the detect and
kafka scenarios verified their alerts against the generator's expected counts.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
from streamproc.bench import harness
from streamproc.bench.common import Row, verify_counts

from streamproc.traffic import generate

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path]:
    out = tmp_path_factory.mktemp("bench")
    args = argparse.Namespace(scenarios=[], events=300, runs=1, out=str(out))
    status = harness.main(args)
    return status, out


def _results(out: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((out / "results.json").read_text())


def test_bench_runs_every_scenario_and_exits_zero(bench_run: tuple[int, Path]) -> None:
    status, out = bench_run
    results = _results(out)
    failed = [r for r in results["results"] if not r["ok"]]
    assert failed == [], failed
    assert status == 0
    scenarios = {r["scenario"] for r in results["results"]}
    assert scenarios == set(harness.SCENARIOS)


def test_results_json_records_machine_versions_params_and_every_run(
    bench_run: tuple[int, Path],
) -> None:
    _, out = bench_run
    results = _results(out)
    assert {"cpu", "cores_usable", "memory_gib", "python", "platform", "loadavg"} <= set(
        results["machine"]
    )
    assert results["versions"]["aiokafka"]
    assert results["versions"]["orjson"]
    assert results["params"] == {
        "scenarios": list(harness.SCENARIOS),
        "events": 300,
        "runs": 1,
        "seed": 1,
    }
    for row in results["results"]:
        if row["skipped"]:
            assert row["skipped"].strip(), "a skip says why"
            continue
        assert len(row["runs"]) >= 1
        assert row["median"] is not None
        if row["baseline_name"]:
            assert len(row["baseline_runs"]) >= 1
            assert row["ratio"] is not None


def test_detect_and_kafka_verified_the_expected_alerts(bench_run: tuple[int, Path]) -> None:
    _, out = bench_run
    rows = {(r["scenario"], r["name"]): r for r in _results(out)["results"]}
    detect = next(r for (s, _), r in rows.items() if s == "detect")
    kafka = next(r for (s, n), r in rows.items() if s == "kafka" and "consume" in n)
    for row in (detect, kafka):
        assert row["verified"]["ok"] is True
        assert row["verified"]["checked"]["brute_force"]["expected"] >= 1
        assert row["verified"]["mismatches"] == {}
    assert kafka["verified"]["committed"] == kafka["verified"]["produced"]


def test_peers_judged_the_exact_alert_set(bench_run: tuple[int, Path]) -> None:
    # Each contestant's alerts equal, key for key and window for window, the set the bench
    # computed from the workload it produced; streamproc also committed every record.
    _, out = bench_run
    rows = {r["name"]: r for r in _results(out)["results"] if r["scenario"] == "peers"}
    main = next(r for n, r in rows.items() if n.startswith("streamproc run, brute_force"))
    check = main["verified"]
    assert check["ok"] is True
    assert check["expected"] == check["got"] >= 3
    assert check["missing"] == check["extra"] == []
    assert check["committed"] == check["produced"] == main["extra"]["events"]
    assert check["dead_letters"] == 0
    assert main["baseline_runs"] and main["ratio"] is not None
    bytewax = rows["streamproc run vs Bytewax, same rule"]
    if not bytewax["skipped"]:
        assert bytewax["verified"]["ok"] is True
        assert bytewax["verified"]["got"] == check["expected"]
    light = rows["streamproc run vs the same getmany loop on streamproc's records"]
    assert light["baseline_runs"] and light["ratio"] is not None
    rss = next(r for n, r in rows.items() if "peak RSS" in n)
    assert rss["median"] > 10  # MB: the process was sampled


def test_unkeyed_judged_both_topics_right_and_re_keyed_every_record(
    bench_run: tuple[int, Path],
) -> None:
    _, out = bench_run
    (row,) = [r for r in _results(out)["results"] if r["scenario"] == "unkeyed"]
    assert row["verified"]["ok"] is True and row["verified"]["mismatches"] == {}
    assert row["runs"] and row["baseline_runs"] and row["ratio"] is not None
    (copies,) = row["extra"]["copies_judged"]
    # keyed by username: only the failures go to ip_address; unkeyed: every record too
    assert copies["keyed"] < row["extra"]["events"] <= copies["unkeyed"]


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    assert len(data) > 10_000, path
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_the_chart_is_one_png_with_a_panel_per_question(bench_run: tuple[int, Path]) -> None:
    # Every scenario ran, so every question has its panel, in one PNG as wide as RESULTS.md
    # shows it.
    from streamproc.bench import chart

    _, out = bench_run
    width, height = _png_size(out / "results.png")
    assert width == 1000 and height > 1500, (width, height)
    results = _results(out)
    fig = chart.render(results["results"], results["machine"])
    assert [sf.get_label() for sf in fig.subfigs] == [
        "throughput",
        "latency",
        "state",
        "workers",
        "peers",
    ]
    chart._plt().close(fig)


def test_a_wrong_answer_fails_the_run() -> None:
    # A fast wrong answer is a failure, not a result.
    traffic = generate("auth", 3000, seed=3)
    check = verify_counts(traffic.expected, [])
    assert check["ok"] is False
    assert check["mismatches"]["brute_force"]["got"] == 0
    row = Row("detect", "x", "events/s", runs=[1e9], verified=check)
    assert row.ok is False


def test_unknown_scenario_is_a_usage_error(tmp_path: Path) -> None:
    args = argparse.Namespace(scenarios=["nope"], events=10, runs=1, out=str(tmp_path))
    assert harness.main(args) == 2


def test_mqtt_scenario_receives_every_message_at_qos_0_and_1(tmp_path: Path) -> None:
    # QoS 0 runs live (the source's clean session sees no backlog), so a subscriber that
    # missed the publish would show here as received < published, not as a slow rate.
    from streamproc.bench import mqtt
    from streamproc.bench.common import Context

    if mqtt.mosquitto_binary() is None:
        pytest.skip("mosquitto is not installed")
    rows = mqtt.run(Context(events=2000, runs=2, out=str(tmp_path)))
    assert [r.name.split()[:2] for r in rows] == [["QoS", "0"], ["QoS", "1"]]
    for row in rows:
        published = row.verified["published"]
        assert published > 1000
        assert row.verified == {
            "ok": True,
            "published": published,
            "received": published,
            "baseline_received": published,
        }
        assert len(row.runs) == len(row.baseline_runs) == 2
        for run in row.extra["per_run"]:
            assert run["ours"]["received"] == run["baseline"]["received"] == published
    for run in rows[0].extra["per_run"]:
        assert run["ours"]["pub_s"] > 0 and run["baseline"]["pub_s"] > 0


def test_bench_help_names_every_scenario() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "streamproc.commands.cli", "bench", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    listed = " ".join(out.split("SCENARIO  ", 1)[1].split("options:")[0].split())
    for name in harness.SCENARIOS:
        assert name in listed, f"bench --help does not name {name!r}"

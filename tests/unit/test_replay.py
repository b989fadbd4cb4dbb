"""``streamproc replay``: determinism, exit codes, dead letters, formats, the summary."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import orjson
import pytest

from streamproc.commands.cli import main as cli_main
from streamproc.commands.replay import ReplayInput, replay_records
from streamproc.config import load_config, parse_config_text
from streamproc.detectors.testing import T0


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def mixed_inputs(tmp: Path, seed: int = 5) -> list[str]:
    """A few thousand records of every family with incidents in them."""
    rng = random.Random(seed)
    auth, api, hosts, cicd, tickets, biz = [], [], [], [], [], []
    for i in range(3000):
        t = T0 + i * 0.7
        user = f"user{rng.randrange(300)}"
        home = int(user[4:]) % 7  # users log in from their own network, mostly
        net = home if rng.random() < 0.97 else rng.randrange(7)
        auth.append(
            {
                "timestamp": t,
                "username": user,
                "ip_address": f"10.{net}.{rng.randrange(2)}.{rng.randrange(9)}",
                "success": rng.random() < 0.8,
                "country": rng.choice(["US", "US", "DE"]),
            }
        )
        api.append(
            {
                "timestamp": t,
                "ip_address": f"192.0.2.{rng.randrange(50)}",
                "endpoint": rng.choice(["/a", "/b?q=x", "/c?id=1%27%20or%201=1--"]),
                "method": "GET",
                "status_code": 200,
            }
        )
    for i in range(30):  # a spray and a brute force
        auth.append(
            {
                "timestamp": T0 + 100 + i,
                "username": f"victim{i}",
                "ip_address": "198.51.100.66",
                "success": False,
            }
        )
    auth.sort(key=lambda r: r["timestamp"])
    for i in range(400):
        for host in ("web-1", "web-2", "db-1"):
            if host == "db-1" and i > 200:
                continue  # db-1 goes silent
            hosts.append(
                {
                    "timestamp": T0 + i * 5,
                    "host": host,
                    "cpu_percent": 95.0 if host == "web-2" and 100 < i < 150 else 30.0,
                }
            )
    cicd += [
        {"timestamp": T0 + 10, "type": "pipeline", "status": "failure", "project": "p"},
        {"timestamp": T0 + 900, "type": "pipeline", "status": "success", "project": "p"},
        {
            "timestamp": T0 + 950,
            "type": "deployment",
            "service": "p",
            "version": "2",
            "environment": "production",
        },
    ]
    tickets += [
        {"timestamp": T0, "event": "created", "ticket_id": "T1", "priority": "urgent"},
        {"timestamp": T0 + 1800, "event": "created", "ticket_id": "T2", "priority": "low"},
        {"timestamp": T0 + 1900, "event": "resolved", "ticket_id": "T2"},
        {"timestamp": T0 + 7300, "event": "created", "ticket_id": "T3"},
    ]
    biz += [
        {
            "timestamp": T0,
            "metric": "revenue",
            "daily_revenue": 55_000,
            "previous_day_revenue": 100_000,
        }
    ]
    files = {
        "auth-logs": auth,
        "api-access-logs": api,
        "host-metrics": hosts,
        "cicd-events": cicd,
        "support-tickets": tickets,
        "business-metrics": biz,
    }
    return [f"{topic}={write_jsonl(tmp / f'{topic}.jsonl', rows)}" for topic, rows in files.items()]


def run(argv: list[str]) -> int:
    return cli_main(["replay", *argv])


def test_replay_same_input_gives_byte_identical_alerts(tmp_path: Path) -> None:
    inputs = mixed_inputs(tmp_path)
    args = [x for spec in inputs for x in ("--input", spec)]
    assert run([*args, "--alerts-out", str(tmp_path / "a1.jsonl")]) == 0
    assert run([*args, "--alerts-out", str(tmp_path / "a2.jsonl")]) == 0
    first = (tmp_path / "a1.jsonl").read_bytes()
    assert first == (tmp_path / "a2.jsonl").read_bytes()
    kinds = {orjson.loads(line)["kind"] for line in first.splitlines()}
    assert {
        "password_spray",
        "sql_injection",
        "host_silent",
        "metric_threshold",
        "pipeline_failed",
        "deployment",
        "ticket_created",
        "sla_breach",
        "ticket_resolved",
        "revenue_drop",
        "revenue_target_missed",
    } <= kinds
    times = [orjson.loads(line)["event_time"] for line in first.splitlines()]
    assert times == sorted(times)


def test_replay_order_of_inputs_and_batching_do_not_change_the_alerts(tmp_path: Path) -> None:
    import streamproc.commands.replay as replay_mod

    inputs = mixed_inputs(tmp_path)
    config = load_config(None)

    def alerts(specs: list[str]) -> bytes:
        parsed = [ReplayInput(s.split("=")[0], Path(s.split("=", 1)[1])) for s in specs]
        return replay_records(config, parsed).alerts_jsonl()

    reference = alerts(inputs)
    assert alerts(list(reversed(inputs))) == reference
    old = replay_mod.BATCH
    try:
        replay_mod.BATCH = 7
        assert alerts(inputs) == reference
    finally:
        replay_mod.BATCH = old


def test_replay_prints_a_summary_per_kind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = mixed_inputs(tmp_path)
    args = [x for spec in inputs for x in ("--input", spec)]
    assert run([*args, "--alerts-out", str(tmp_path / "out.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "Alerts by kind" in out and "password_spray" in out and "total" in out
    assert "records" in out and "dead letters" in out


def test_replay_usage_errors_exit_2_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write_jsonl(tmp_path / "a.jsonl", [])
    out = str(tmp_path / "o.jsonl")
    assert run(["--input", str(good), "--alerts-out", out]) == 2
    assert "is not TOPIC=FILE" in capsys.readouterr().err
    assert run(["--input", f"auth-logs={tmp_path / 'missing.jsonl'}", "--alerts-out", out]) == 2
    assert "no such file" in capsys.readouterr().err
    assert run(["--input", f"nonsense-topic={good}", "--alerts-out", out]) == 2
    assert "unknown topic 'nonsense-topic'" in capsys.readouterr().err
    bad_config = tmp_path / "c.yaml"
    bad_config.write_text("detectors:\n  brute_force: {treshold: 3}\n")
    assert run(["-c", str(bad_config), "--input", f"auth-logs={good}", "--alerts-out", out]) == 2
    assert "treshold" in capsys.readouterr().err


def test_replay_dead_letters_undecodable_and_late_records(tmp_path: Path) -> None:
    path = tmp_path / "auth.jsonl"
    # a partition's first records start its stream time (detectors/engine.py): then one
    # 1000 s behind it is late
    rows = [
        {"timestamp": T0 + 998 + i, "username": "a", "ip_address": "10.0.0.1", "success": True}
        for i in range(3)
    ]
    rows.append({"timestamp": T0, "username": "a", "ip_address": "10.0.0.1", "success": True})
    write_jsonl(path, rows)
    with path.open("ab") as fh:
        fh.write(b"{not json\n\n   \n")
        fh.write(orjson.dumps({"timestamp": T0 + 1001, "username": "a"}) + b"\n")
    dl = tmp_path / "dl.jsonl"
    assert (
        run(
            [
                "--input",
                f"auth-logs={path}",
                "--alerts-out",
                str(tmp_path / "o.jsonl"),
                "--dead-letters-out",
                str(dl),
            ]
        )
        == 0
    )
    letters = [orjson.loads(line) for line in dl.read_bytes().splitlines()]
    by_reason = {d["reason"]: d for d in letters}
    assert set(by_reason) == {"late", "not_json", "missing_field"}
    assert by_reason["late"]["source"]["offset"] == 4  # offset = line number
    assert by_reason["not_json"]["detail"].startswith(f"{path}:5:")
    assert (
        orjson.loads(__import__("base64").b64decode(by_reason["late"]["raw_b64"]))["timestamp"]
        == T0
    )


def test_replay_dead_letter_carries_its_own_line_when_two_topics_share_a_binding() -> None:
    config = parse_config_text('topics:\n  - {pattern: "auth-.*", family: auth-logs}\n')

    def lines(user: str, last: float) -> list[bytes]:
        # three records start the partition's stream time; the fourth is at ``last``
        times = [T0 + 998, T0 + 999, T0 + 1000, last]
        return [
            orjson.dumps(
                {"timestamp": t, "username": user, "ip_address": "10.0.0.1", "success": True}
            )
            for t in times
        ]

    result = replay_records(
        config,
        [
            ReplayInput("auth-a", lines=lines("on-time", T0 + 1001)),
            ReplayInput("auth-b", lines=lines("late", T0)),
        ],
    )
    [late] = result.dead_letters
    assert (late.reason, late.topic, late.partition, late.offset) == ("late", "auth-b", 0, 4)
    assert late.detail.startswith("<auth-b>:4: ")
    # line 4 of auth-a sits at the same partition and offset of its own topic
    assert orjson.loads(late.raw)["username"] == "late"


def test_replay_reads_access_log_lines_through_a_combined_binding(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "topics:\n  - topic: nginx\n    family: api-access-logs\n    format: combined\n"
    )
    log = tmp_path / "access.log.gz"
    lines = [
        f'203.0.113.9 - - [01/Jan/2026:00:00:0{i} +0000] "GET /item?id=1%27%20OR%201=1-- '
        'HTTP/1.1" 500 12 "-" "sqlmap/1.7"'
        for i in range(3)
    ]
    with gzip.open(log, "wb") as fh:
        fh.write("\n".join(lines).encode() + b"\n")
    out = tmp_path / "o.jsonl"
    assert run(["-c", str(config), "--input", f"nginx={log}", "--alerts-out", str(out)]) == 0
    [alert] = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert alert["kind"] == "sql_injection" and alert["evidence"]["scanner"] == "sqlmap"
    assert alert["labels"]["binding"] == "nginx"


def test_replay_fires_due_timers_at_the_end_of_input(tmp_path: Path) -> None:
    rows = [{"timestamp": T0 + i * 10, "host": "web-1"} for i in range(5)]
    rows += [{"timestamp": T0 + i * 10, "host": "web-2"} for i in range(100)]
    rows.sort(key=lambda r: r["timestamp"])
    path = write_jsonl(tmp_path / "h.jsonl", rows)
    config = load_config(None)
    result = replay_records(config, [ReplayInput("host-metrics", path)])
    [alert] = result.alerts
    assert alert.kind == "host_silent" and alert.key == {"host": "web-1"}
    # at the end, the watermark is the largest event time: web-2's own deadline is not due
    assert result.engines["host-metrics"].watermark == T0 + 990


def test_replay_several_files_of_one_topic_are_separate_partitions(tmp_path: Path) -> None:
    a = write_jsonl(
        tmp_path / "a.jsonl",
        [
            {"timestamp": T0 + i * 100, "username": "u", "ip_address": "10.0.0.1", "success": False}
            for i in range(3)
        ],
    )
    b = write_jsonl(
        tmp_path / "b.jsonl",
        [
            {
                "timestamp": T0 + 50 + i * 100,
                "username": "u",
                "ip_address": "10.0.0.1",
                "success": False,
            }
            for i in range(2)
        ],
    )
    result = replay_records(
        load_config(None), [ReplayInput("auth-logs", a), ReplayInput("auth-logs", b)]
    )
    [alert] = result.alerts
    assert alert.kind == "brute_force" and alert.evidence["failures"] == 5
    assert {s["partition"] for s in [alert.source]} <= {0, 1}


def test_replay_writes_alerts_to_stdout_with_dash(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    rows = [
        {"timestamp": T0 + i, "username": "u", "ip_address": "10.0.0.1", "success": False}
        for i in range(5)
    ]
    path = write_jsonl(tmp_path / "a.jsonl", rows)
    assert run(["--input", f"auth-logs={path}", "--alerts-out", "-"]) == 0
    captured = capsysbinary.readouterr()
    [line] = captured.out.splitlines()
    assert orjson.loads(line)["kind"] == "brute_force"
    assert b"Alerts by kind" in captured.err


def test_replay_finds_exactly_the_incidents_the_traffic_generator_injected() -> None:
    # An independent check: streamproc.traffic injects incidents and says how many alerts
    # of each kind (and how many resolutions) they must raise.
    from streamproc.traffic import count_alerts, generate

    traffic = generate("mixed", 20_000, seed=3)
    inputs = [
        ReplayInput(family, lines=[orjson.dumps(r) for r in rows])
        for family, rows in traffic.records.items()
    ]
    result = replay_records(load_config(None), inputs)
    assert result.dead_letters == []
    got = count_alerts(result.alerts)
    assert {k: got.get(k, 0) for k in traffic.expected} == traffic.expected
    resolved = count_alerts(result.alerts, "resolved")
    assert {k: resolved.get(k, 0) for k in traffic.resolved} == traffic.resolved


def truncated_auth_gz(path: Path) -> int:
    """A .gz auth log cut short as a copy taken while it was written would be: a brute force
    early in it, another one past the cut. Returns how many whole lines survive the cut."""
    rng = random.Random(11)
    rows = [
        {
            "timestamp": T0 + i,
            "username": f"user{rng.randrange(10**6)}",
            "ip_address": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}",
            "success": True,
        }
        for i in range(6000)
    ]
    for i in range(5):
        rows[100 + i] |= {"username": "early", "ip_address": "192.0.2.1", "success": False}
        rows[5900 + i] |= {"username": "late", "ip_address": "192.0.2.2", "success": False}
    whole = gzip.compress(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    cut = whole[: len(whole) * 2 // 3]
    path.write_bytes(cut)
    # what can be read at all: the whole lines that the cut bytes decompress to
    readable = __import__("zlib").decompressobj(wbits=31).decompress(cut)
    assert 1000 < readable.count(b"\n") < 5900
    return readable.count(b"\n")


def test_replay_judges_what_a_truncated_gz_holds_then_names_the_file_and_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    auth = tmp_path / "auth.jsonl.gz"
    whole_lines = truncated_auth_gz(auth)
    hosts = write_jsonl(
        tmp_path / "hosts.jsonl",
        sorted(
            [{"timestamp": T0 + i * 10, "host": "web-1"} for i in range(5)]
            + [{"timestamp": T0 + i * 10, "host": "web-2"} for i in range(100)],
            key=lambda r: r["timestamp"],
        ),
    )
    out = tmp_path / "alerts.jsonl"
    argv = ["--input", f"auth-logs={auth}", "--input", f"host-metrics={hosts}"]
    assert run([*argv, "--alerts-out", str(out)]) == 3
    alerts = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert sorted((a["kind"], a["key"].get("username") or a["key"]["host"]) for a in alerts) == [
        ("brute_force", "early"),
        ("host_silent", "web-1"),
    ]
    captured = capsys.readouterr()
    # every whole line before the cut, and the host file
    assert f"{whole_lines + 105} records, {whole_lines + 105} events judged" in captured.out
    err = captured.err.strip().splitlines()[-1]
    assert err.startswith(f"streamproc replay: {auth}: cannot read past line {whole_lines} (")
    assert "end-of-stream marker" in err and f"lines 1-{whole_lines} were judged, " in err


def test_replay_result_lists_an_input_read_only_in_part(tmp_path: Path) -> None:
    auth = tmp_path / "auth.jsonl.gz"
    whole_lines = truncated_auth_gz(auth)
    result = replay_records(load_config(None), [ReplayInput("auth-logs", auth)])
    [unread] = result.unread
    assert (unread.name, unread.lines) == (str(auth), whole_lines)
    assert result.records == result.events == whole_lines
    [alert] = result.alerts
    assert alert.key["username"] == "early"


def test_replay_reads_a_line_longer_than_a_read_and_a_last_line_without_newline(
    tmp_path: Path,
) -> None:
    long_name = "u" * 200_000  # spans several reads of the file
    rows = [
        {"timestamp": T0 + i, "username": long_name, "ip_address": "10.0.0.1", "success": False}
        for i in range(5)
    ]
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"\r\n\n".join(orjson.dumps(r) for r in rows))  # no newline at the end
    result = replay_records(load_config(None), [ReplayInput("auth-logs", path)])
    assert (result.records, result.events, result.unread) == (5, 5, [])
    [alert] = result.alerts
    assert alert.kind == "brute_force"
    assert [d.offset for d in result.dead_letters] == []

"""Records and alerts that are too large: a dead letter always fits its sink, and one alert
never outgrows its cap, whatever a producer writes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from streamproc.alerts import Alert
from streamproc.config import parse_config_text
from streamproc.decode import DeadLetter
from streamproc.decode.deadletter import MAX_DEAD_LETTER_BYTES
from streamproc.detectors import Detector
from streamproc.ops.metrics import Metrics
from streamproc.pipeline.runtime import Runtime
from streamproc.storage.dlq import FileDeadLetters, KafkaDeadLetters
from tests.configs import binding
from tests.streams import auth_stream, committed_total, dumps, produce, read_records
from tests.waiting import wait_until


async def _dead_letters(bootstrap: str, topic: str, n: int) -> list[tuple[bytes, dict]]:
    records = await read_records(bootstrap, topic, n, timeout=20)
    return [(r.value, orjson.loads(r.value)) for r in records]


async def _run_until(runtime: Runtime, predicate, what: str, timeout: float = 60.0) -> None:
    def done() -> bool:
        if predicate():
            return True
        # a task that died would leave the wait to time out: its error says more
        failed = [
            t
            for t in runtime._tasks
            if t.done() and not t.cancelled() and t.exception() is not None
        ]
        if failed:
            raise failed[0].exception()
        return False

    await runtime.start()
    try:
        await wait_until(done, timeout, what, detail=lambda: runtime.stats)
    finally:
        await runtime.stop()


def _assert_cut_dead_letter(encoded: bytes, d: dict, payload: bytes) -> None:
    assert len(encoded) <= MAX_DEAD_LETTER_BYTES
    assert d["raw_truncated"] is True
    assert d["raw_bytes"] == len(payload)
    assert d["raw_sha256"] == hashlib.sha256(payload).hexdigest()
    prefix = base64.b64decode(d["raw_b64"])
    assert len(prefix) > 500_000  # as much as fits, not a token sample
    assert payload.startswith(prefix)


# -- records too large for their dead letter -------------------------------------------------


@pytest.mark.kafka
async def test_a_900kb_non_json_record_is_dead_lettered_cut_and_the_partition_moves_on(
    kafka, receiver, make_config
) -> None:
    topic = f"auth-{uuid.uuid4().hex[:8]}"
    group = f"g-{uuid.uuid4().hex[:8]}"
    good = dumps(auth_stream(200, 1))
    poison = b"<" + bytes(range(32, 127)) * (900_000 // 95) + b">"
    poison = poison[:900_000]
    values = good[:100] + [poison] + good[100:]
    await produce(kafka.bootstrap_servers, topic, values, partitions=1)
    metrics = Metrics(process_metrics=False)
    runtime = Runtime(
        make_config(
            bootstrap=kafka.bootstrap_servers,
            group=group,
            topics=[topic],
            urls=[receiver.url("json")],
        ),
        metrics=metrics,
    )
    await _run_until(
        runtime,
        lambda: runtime.stats.records_in >= len(values) and len(receiver.accepted) >= 1,
        "every record and the alert after the poison",
    )
    assert metrics.value("streamproc_dead_letters_cut_total", {"topic": topic}) == 1
    assert runtime.stats.events == 200  # the records after it were judged
    assert runtime.stats.dead_by_reason == {"not_json": 1}
    assert len(receiver.accepted) == 1  # the incident after the poison still fires
    [(encoded, d)] = await _dead_letters(kafka.bootstrap_servers, f"{topic}.dlq", 1)
    assert d["reason"] == "not_json" and d["source"]["offset"] == 100
    _assert_cut_dead_letter(encoded, d, poison)
    assert await committed_total(kafka.bootstrap_servers, group, topic) == len(values)


@pytest.mark.kafka
async def test_a_record_over_max_record_bytes_is_dead_lettered_as_too_large_with_a_prefix(
    kafka, receiver, make_config
) -> None:
    topic = f"auth-{uuid.uuid4().hex[:8]}"
    group = f"g-{uuid.uuid4().hex[:8]}"
    good = dumps(auth_stream(50, 0))
    huge = orjson.dumps(
        {
            "timestamp": 1_790_000_000,
            "username": "u" * 950_000,
            "ip_address": "203.0.113.1",
            "success": False,
        }
    )
    values = good[:25] + [huge] + good[25:]
    await produce(kafka.bootstrap_servers, topic, values, partitions=1)
    runtime = Runtime(
        make_config(
            bootstrap=kafka.bootstrap_servers,
            group=group,
            topics=[binding(topic, max_record_bytes=100000)],
            urls=[receiver.url("json")],
        )
    )
    await _run_until(runtime, lambda: runtime.stats.records_in >= len(values), "every record")
    assert runtime.stats.dead_by_reason == {"too_large": 1}
    [(encoded, d)] = await _dead_letters(kafka.bootstrap_servers, f"{topic}.dlq", 1)
    assert d["reason"] == "too_large" and "max_record_bytes=100000" in d["detail"]
    _assert_cut_dead_letter(encoded, d, huge)
    assert await committed_total(kafka.bootstrap_servers, group, topic) == len(values)


@pytest.mark.kafka
async def test_a_dead_letter_refused_for_size_is_written_without_its_payload_and_counted(
    kafka,
) -> None:
    """The broker's (here: the producer's) limit is lower than the one the dead letters were
    sized for: the write still succeeds, with a minimal dead letter that says why."""
    from aiokafka import AIOKafkaProducer

    from streamproc.ops.broker import ensure_topics

    topic = f"auth-{uuid.uuid4().hex[:8]}"
    await ensure_topics({"bootstrap_servers": kafka.bootstrap_servers}, {f"{topic}.dlq": 1})
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap_servers, max_request_size=64 * 1024
    )
    await producer.start()
    try:
        sink = KafkaDeadLetters(producer, max_request_size=4 * 1024 * 1024)
        payload = b"x" * 300_000
        await sink.write(
            [
                DeadLetter("not_json", "not JSON", payload, topic, 0, 7, b"k"),
                DeadLetter("not_json", "not JSON", b"small", topic, 0, 8, b"k"),
            ]
        )
    finally:
        await producer.stop()
    assert sink.count == 2 and sink.oversize == 1
    seen = sorted(
        (d for _, d in await _dead_letters(kafka.bootstrap_servers, f"{topic}.dlq", 2)),
        key=lambda d: d["source"]["offset"],
    )
    assert [d["source"]["offset"] for d in seen] == [7, 8]
    minimal, small = seen
    assert minimal["raw_b64"] == "" and minimal["raw_truncated"] is True
    assert minimal["raw_bytes"] == 300_000
    assert minimal["raw_sha256"] == hashlib.sha256(payload).hexdigest()
    assert "MessageSizeTooLargeError" in minimal["sink_error"]
    assert base64.b64decode(small["raw_b64"]) == b"small"


@pytest.mark.kafka
async def test_cut_and_refused_dead_letters_are_counted_per_topic_in_prometheus(kafka) -> None:
    from aiokafka import AIOKafkaProducer

    from streamproc.ops.broker import ensure_topics

    topic = f"auth-{uuid.uuid4().hex[:8]}"
    await ensure_topics({"bootstrap_servers": kafka.bootstrap_servers}, {f"{topic}.dlq": 1})
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap_servers, max_request_size=64 * 1024
    )
    await producer.start()
    metrics = Metrics(process_metrics=False)
    secret = b"password=hunter2 "
    try:
        sink = KafkaDeadLetters(producer, metrics=metrics)  # sized for 1 MiB, refused at 64 KiB
        await sink.write(
            [
                DeadLetter("not_json", "not JSON", secret * 60_000, topic, 0, 1),  # cut, refused
                DeadLetter("not_json", "not JSON", secret * 15_000, topic, 0, 2),  # refused
                DeadLetter("not_json", "not JSON", secret, topic, 0, 3),
            ]
        )  # fits
    finally:
        await producer.stop()
    assert (sink.cut, sink.oversize) == (1, 2)
    assert metrics.value("streamproc_dead_letters_cut_total", {"topic": topic}) == 1
    assert metrics.value("streamproc_dead_letters_oversize_total", {"topic": topic}) == 2
    exposition = metrics.exposition()
    assert b"hunter2" not in exposition and b"aHVudGVy" not in exposition


async def test_file_dead_letters_keep_a_bounded_prefix_of_a_huge_record(tmp_path) -> None:
    metrics = Metrics(process_metrics=False)
    sink = FileDeadLetters(tmp_path / "dl.jsonl", max_line_bytes=64 * 1024, metrics=metrics)
    payload = bytes(range(256)) * 4000  # 1,024,000 bytes, not UTF-8
    key = b"K" * 5000
    await sink.write([DeadLetter("not_utf8", "invalid UTF-8 at byte 128", payload, "t", 0, 1, key)])
    [line] = (tmp_path / "dl.jsonl").read_bytes().splitlines()
    assert len(line) < 64 * 1024
    d = orjson.loads(line)
    assert d["raw_truncated"] is True and d["raw_bytes"] == len(payload)
    assert d["raw_sha256"] == hashlib.sha256(payload).hexdigest()
    assert payload.startswith(base64.b64decode(d["raw_b64"]))
    assert d["key_truncated"] is True and d["key_bytes"] == 5000
    assert d["key_sha256"] == hashlib.sha256(key).hexdigest()
    assert sink.cut == 1
    assert metrics.value("streamproc_dead_letters_cut_total", {"topic": "t"}) == 1


def test_a_dead_letter_that_fits_keeps_the_whole_payload_and_says_nothing_was_cut() -> None:
    dl = DeadLetter("not_json", "not JSON", b"x" * 1000, "t", 0, 1)
    d = orjson.loads(dl.encode(MAX_DEAD_LETTER_BYTES))
    assert base64.b64decode(d["raw_b64"]) == b"x" * 1000
    assert "raw_truncated" not in d


# -- alerts that copy too much -----------------------------------------------------------------


def _failures(username: str, user_agent: str, n: int = 6, ip: str = "203.0.113.9") -> list[bytes]:
    return [
        orjson.dumps(
            {
                "timestamp": 1_790_000_000 + i * 60,
                "username": username,
                "ip_address": ip,
                "success": False,
                "user_agent": f"{user_agent}{i}",
                "country": "RU",
            }
        )
        for i in range(n)
    ]


def _replay(lines: list[bytes], config: str = ""):
    from streamproc.commands.replay import ReplayInput, replay_records

    return replay_records(parse_config_text(config), [ReplayInput("auth-logs", lines=lines)])


def test_six_failures_with_900kb_user_agents_make_one_alert_within_the_cap_saying_what_was_cut() -> (  # noqa: E501
    None
):
    result = _replay(_failures("victim", "A" * 900_000))
    [alert] = [a for a in result.alerts if a.kind == "brute_force"]
    encoded = alert.to_json()
    assert len(encoded) <= 64 * 1024
    assert "evidence.samples.user_agent" in alert.truncated
    samples = alert.evidence["samples"]
    assert samples and all(
        s["user_agent"].startswith("A" * 1000)
        and s["user_agent"].endswith("bytes]")
        and "...[cut " in s["user_agent"]
        for s in samples
    )
    assert orjson.loads(encoded)["truncated"] == alert.truncated  # it travels with the alert
    assert alert.key == {"username": "victim", "ip_address": "203.0.113.9"}  # not cut


def test_a_huge_username_is_cut_in_the_alert_but_fingerprinted_whole() -> None:
    from streamproc.alerts import fingerprint

    one, two = "u" * 900_000 + "1", "u" * 900_000 + "2"
    interleaved = [
        line
        for pair in zip(
            _failures(one, "ua", ip="203.0.113.1"),
            _failures(two, "ua", ip="203.0.113.1"),
            strict=True,
        )
        for line in pair
    ]
    result = _replay(interleaved)
    alerts = [a for a in result.alerts if a.kind == "brute_force"]
    assert len(alerts) == 2
    for alert, username in zip(alerts, (one, two), strict=True):
        assert len(alert.to_json()) <= 64 * 1024
        assert {"key.username", "labels.username", "title", "body"} <= set(alert.truncated)
        assert alert.key["username"].startswith("u" * 1000)
        assert alert.key["username"].endswith(f"...[cut {900_001 - 1024} bytes]")
        # the fingerprint is the one the whole key gives: dedup and resolves still work
        first_failure = 1_790_000_000.0
        assert alert.fingerprint == fingerprint(
            "brute_force", {"username": username, "ip_address": "203.0.113.1"}, first_failure
        )
    assert alerts[0].fingerprint != alerts[1].fingerprint
    again = [
        a for a in _replay(_failures(one, "ua", ip="203.0.113.1")).alerts if a.kind == "brute_force"
    ]
    assert again[0].fingerprint == alerts[0].fingerprint


def test_alerts_max_bytes_from_the_config_bounds_every_alert() -> None:
    config = "alerts: {max_bytes: 8192, max_value_bytes: 256}\n"
    result = _replay(_failures("v" * 5000, "B" * 100_000), config)
    [alert] = [a for a in result.alerts if a.kind == "brute_force"]
    assert len(alert.to_json()) <= 8192
    assert len(alert.key["username"].encode()) <= 256 + len("...[cut 4744 bytes]")


def test_an_alert_that_only_a_whole_part_cut_can_fit_loses_its_largest_evidence_first() -> None:
    from streamproc.alerts import Alert, AlertLimits, cap_alert

    alert = Alert(
        "k",
        "high",
        "firing",
        {"host": "h"},
        "fp",
        1.0,
        "title",
        evidence={"many": ["x" * 1000] * 100, "count": 3},
    )
    cap_alert(alert, AlertLimits(max_bytes=8192, max_value_bytes=1024))
    assert len(alert.to_json()) <= 8192
    assert alert.evidence["count"] == 3
    assert alert.evidence["many"].startswith("[cut ")
    assert "evidence.many" in alert.truncated


@pytest.mark.parametrize(
    "section, words",
    [
        ("alerts: {max_bytes: 100}", "alerts.max_bytes must be a number of bytes from 4096"),
        ("alerts: {max_bytes: 64KiB}", "alerts.max_bytes must be a number of bytes"),
        ("alerts: {max_value_bytes: 20000}", "at most an eighth of alerts.max_bytes"),
        ("alerts: {max_size: 1}", "unknown alerts setting 'max_size'"),
    ],
)
def test_check_config_rejects_bad_alert_limits_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], section: str, words: str
) -> None:
    from streamproc.commands.cli import main as cli

    path = tmp_path / "streamproc.yaml"
    path.write_text("state_dir: x\n" + section + "\n")
    rc = cli(["check-config", "-c", str(path)])
    _, err = capsys.readouterr()
    assert rc == 1
    first = err.strip().splitlines()[0]
    assert first.startswith(f"{path}:2: "), first
    assert words in first, first


# -- alerts a custom detector builds by hand ---------------------------------------------------

HAND_BUILT = '''
from typing import Any

from streamproc.alerts import Alert
from streamproc.detectors import Detector

BIG = "x" * 300_000


class HandBuilt(Detector):
    """Builds its alerts with Alert(...): make_alert's cut never sees them."""

    kind = "hand_built"
    family = "auth-logs"
    severity = "high"
    defaults = {"shape": "long_strings"}

    def process(self, events: list[Any]) -> list[Alert]:
        return [self.build(ev) for ev in events]

    def build(self, ev: Any) -> Alert:
        alert = Alert(kind=self.kind, severity="high", status="firing",
                      key={"username": ev.data["username"]}, fingerprint="0123456789abcdef",
                      event_time=ev.ts, title="hand built", labels={"team": "secops"},
                      source=ev.source())
        shape = self.params["shape"]
        if shape == "long_strings":
            alert.title = alert.body = BIG
            alert.key["username"] = BIG
            alert.evidence = {"sample": [BIG] * 10}
        elif shape == "many_long_names":  # 500 evidence entries, each named with 2 KB
            alert.evidence = {f"{i}:{BIG[:2000]}": i for i in range(500)}
        elif shape == "not_json_types":  # orjson writes these with str(): no string to cut
            alert.evidence = {"raw": BIG.encode(), "seen": {BIG}, "n": 3, 7: "a number"}
            alert.labels["blob"] = BIG.encode()
            alert.title = 12345  # type: ignore[assignment]
        elif shape == "long_identity":  # the fields a detector normally names itself
            alert.fingerprint = BIG
            alert.family = BIG
            alert.truncated = [BIG] * 100
        return alert
'''


@pytest.fixture()
def hand_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import sys

    from streamproc.detectors import REGISTRY

    (tmp_path / "hand_built_detectors.py").write_text(HAND_BUILT)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("hand_built_detectors", None)
    REGISTRY.pop("hand_built", None)


def _hand_built_config(shape: str, extra: str = "") -> str:
    return f"""
alerts: {{max_bytes: 8192, max_value_bytes: 256}}
topics:
  - topic: auth-logs
    family: auth-logs
    detectors:
      hand_built: {{class: "hand_built_detectors:HandBuilt", shape: {shape}}}
{extra}"""


SHAPES = ["long_strings", "many_long_names", "not_json_types", "long_identity"]


@pytest.mark.parametrize("shape", SHAPES)
def test_an_alert_a_custom_detector_builds_by_hand_is_cut_to_alerts_max_bytes_in_replay(
    hand_built: Path, shape: str
) -> None:
    from streamproc.commands.cli import main as cli

    config = hand_built / "streamproc.yaml"
    config.write_text(_hand_built_config(shape))
    records = hand_built / "auth.jsonl"
    records.write_bytes(b"".join(line + b"\n" for line in _failures("ann", "ua", n=2)))
    out = hand_built / "alerts.jsonl"
    assert (
        cli(
            [
                "replay",
                "-c",
                str(config),
                "--input",
                f"auth-logs={records}",
                "--alerts-out",
                str(out),
            ]
        )
        == 0
    )
    mine = [line for line in out.read_bytes().splitlines() if b'"hand_built"' in line[:40]]
    assert len(mine) == 2
    for line in mine:
        assert len(line) <= 8192
        alert = orjson.loads(line)
        assert alert["kind"] == "hand_built" and alert["status"] == "firing"
        assert alert["truncated"]  # it says it was cut
        assert len(alert["fingerprint"]) <= 64  # a Kafka key of the alert log


@pytest.mark.parametrize("shape", SHAPES)
def test_an_alert_a_custom_detector_builds_by_hand_is_cut_before_the_alert_log(
    hand_built: Path, shape: str
) -> None:
    """The live path: records judged by the runtime's Judge, alerts appended to the log."""
    from streamproc.decode.records import RawRecord
    from streamproc.pipeline.runtime import Judge
    from streamproc.storage.alertlog import SqliteAlertLog

    judge = Judge(parse_config_text(_hand_built_config(shape)))
    records = [
        RawRecord(line, "auth-logs", 0, i) for i, line in enumerate(_failures("ann", "ua", n=2))
    ]
    alerts, dead = judge.judge(records, "kafka", 1_790_000_000.0)
    assert dead == []
    mine = [a for a in alerts if a.kind == "hand_built"]
    assert len(mine) == 2
    log = SqliteAlertLog(hand_built / "alerts.sqlite3")
    try:
        asyncio.run(log.append(mine))
        sizes = [n for (n,) in log.db.execute("SELECT length(payload) FROM alerts")]
    finally:
        log.close()
    assert len(sizes) == 2 and max(sizes) <= 8192
    if shape == "long_strings":  # what routing reads survives a cut of values
        assert mine[0].labels["team"] == "secops"
        assert "key.username" in mine[0].truncated


def test_capping_an_alert_make_alert_capped_already_changes_nothing() -> None:
    """The engine caps every alert, also those make_alert cut: a second cut must not cut
    the cut values again (nor their markers)."""
    import copy

    from streamproc.alerts import AlertLimits, cap_alert

    result = _replay(_failures("u" * 5000, "A" * 900_000))
    [alert] = [a for a in result.alerts if a.kind == "brute_force"]
    alert.evidence["many"] = list(range(150))  # a list cut to 100 items and a marker
    limits = AlertLimits()
    once = cap_alert(copy.deepcopy(alert), limits).to_json()
    twice = cap_alert(cap_alert(copy.deepcopy(alert), limits), limits).to_json()
    assert once == twice


class GrowsAfterMakeAlert(Detector):
    """Builds its alert with make_alert, then grows it (as host_silent appends to the body,
    but deep inside the evidence and past every limit)."""

    kind = "grows_after_make_alert"
    family = "auth-logs"

    def process(self, events: list[Any]) -> list[Alert]:
        out = []
        for ev in events:
            samples = [{"user_agent": "short"}]
            alert = self.make_alert(
                key={"username": ev.data["username"]},
                incident=ev.ts,
                event_time=ev.ts,
                title="grows",
                evidence={"samples": samples},
            )
            samples[0]["user_agent"] = "A" * 900_000  # the list make_alert was handed
            alert.evidence["samples"].extend({"n": i} for i in range(500))
            alert.body += "B" * 900_000
            out.append(alert)
        return out


def test_an_alert_grown_after_make_alert_is_cut_by_the_engine() -> None:
    from streamproc.alerts import DEFAULT_MAX_BYTES
    from streamproc.detectors.testing import T0, Harness

    h = Harness(GrowsAfterMakeAlert)
    [alert] = h.send(T0, username="ann", ip_address="203.0.113.9", success=False)
    assert len(alert.to_json()) <= DEFAULT_MAX_BYTES
    samples = alert.evidence["samples"]
    assert samples[0]["user_agent"].endswith("...[cut 898976 bytes]")
    assert samples[-1] == "...[cut 401 items]"
    assert alert.body.startswith("BBB") and alert.body.endswith("...[cut 898976 bytes]")
    assert {"body", "evidence.samples", "evidence.samples.user_agent"} <= set(alert.truncated)


def test_what_a_detector_changes_after_make_alert_is_cut_by_its_engine() -> None:
    """make_alert does not cut: the engine's cap, after the detector is done, sees the alert
    as it leaves, whatever the detector added to it after make_alert."""
    from streamproc.detectors.engine import DetectorEngine
    from streamproc.events import Event

    class Grows(Detector):
        kind = "grows"
        family = "auth-logs"

        def process(self, events):
            out = []
            for ev in events:
                alert = self.make_alert(
                    key={"username": ev.data["username"]},
                    incident=ev.ts,
                    event_time=ev.ts,
                    title="t",
                    evidence={"samples": [{"user_agent": "x" * 200}]},
                )
                alert.evidence["samples"][0]["user_agent"] = "y" * 5000  # after make_alert
                out.append(alert)
            return out

    engine = DetectorEngine([Grows()])
    event = Event("auth-logs", 1_790_000_000.0, {"username": "ann"}, "auth-logs", 0, 0)
    alerts, _ = engine.process([event])
    (alert,) = alerts
    assert alert.evidence["samples"][0]["user_agent"].endswith("...[cut 3976 bytes]")
    assert alert.truncated == ["evidence.samples.user_agent"]


# -- records the runtime writes itself ---------------------------------------------------------


def _unkeyed_judge(max_record_bytes: str = ""):
    """A Judge whose auth-logs topic is not keyed: records are repartitioned by username and
    by ip_address (no broker is needed to judge)."""
    from streamproc.pipeline.runtime import Judge

    config = parse_config_text(f"""
kafka: {{bootstrap_servers: "127.0.0.1:9"}}
topics:
  - topic: auth-logs
    family: auth-logs
{max_record_bytes}
""")
    return Judge(config, repartition=True)


def _record_of(size: int, **fields) -> bytes:
    """A valid auth-logs record of exactly ``size`` bytes (padded in user_agent)."""
    row = {
        "timestamp": 1_790_000_000,
        "ip_address": "203.0.113.7",
        "success": False,
        "user_agent": "",
    } | fields
    pad = size - len(orjson.dumps(row))
    row["user_agent"] = "a" * pad
    out = orjson.dumps(row)
    assert len(out) == size
    return out


def test_a_record_of_max_record_bytes_with_a_huge_key_field_repartitions_within_the_producers_limit() -> (  # noqa: E501
    None
):
    from streamproc.decode.records import RawRecord
    from streamproc.pipeline.batches import (
        EVERY_PARTITION,
        MAX_INTERNAL_RECORD_BYTES,
        MAX_KEY_BYTES,
    )

    judge = _unkeyed_judge()
    limit = judge.bindings["auth-logs"].max_record_bytes
    username = "u" * 600_000
    record = _record_of(limit, username=username)
    _, dead = judge.judge([RawRecord(record, "auth-logs", 0, 1)], "kafka", 1_790_000_000.0)
    assert dead == []
    # (a progress mark, keyless, may follow the failure to password_spray's topic)
    outbox = [
        (t, key, value) for t, key, value in judge.take_outbox() if key is not EVERY_PARTITION
    ]
    assert {topic.rsplit(".", 1)[1] for topic, _, _ in outbox} == {"username", "ip_address"}
    for _topic, key, value in outbox:
        assert len(key) <= MAX_KEY_BYTES
        assert len(key) + len(value) <= MAX_INTERNAL_RECORD_BYTES
    [key] = [key for topic, key, _ in outbox if topic.endswith(".username")]
    assert key == hashlib.sha256(username.encode()).hexdigest().encode()


def test_the_same_long_key_always_lands_on_the_same_partition() -> None:
    from streamproc.pipeline.batches import BatchWriter, fit_key

    long_key = ("v" * 5000).encode()
    assert fit_key(long_key) == fit_key(long_key) == hashlib.sha256(long_key).hexdigest().encode()
    assert fit_key(b"alice") == b"alice"  # a short key is kept as it is
    assert fit_key(("v" * 4999 + "w").encode()) != fit_key(long_key)
    partitions = {BatchWriter(None).partition(fit_key(long_key), 12) for _ in range(3)}
    assert len(partitions) == 1


def test_a_record_whose_repartitioned_copy_outgrows_the_producers_limit_is_dead_lettered() -> None:
    """Re-encoding can grow a record (1e5 is written back as 100000.0): its copy is not
    produced, the record is dead-lettered with the reason, and it was still judged here."""
    from streamproc.decode.records import RawRecord
    from streamproc.pipeline.batches import EVERY_PARTITION

    judge = _unkeyed_judge()
    row = {
        "timestamp": 1_790_000_000,
        "username": "ann",
        "ip_address": "203.0.113.7",
        "success": False,
    }
    numbers = b"[" + b",".join([b"1e5"] * 200_000) + b"]"
    record = orjson.dumps(row)[:-1] + b',"extra":' + numbers + b"}"
    assert len(record) < judge.bindings["auth-logs"].max_record_bytes
    _, dead = judge.judge([RawRecord(record, "auth-logs", 0, 9)], "kafka", 1_790_000_000.0)
    # no copy is produced (a keyless progress mark at most)
    assert all(key is EVERY_PARTITION for _, key, _ in judge.take_outbox())
    [dl] = dead
    assert dl.reason == "too_large" and dl.offset == 9 and "repartition" in dl.detail
    assert judge.stats.events == 1 and judge.stats.dead_by_reason == {"too_large": 1}


def test_max_record_bytes_above_what_a_repartitioned_record_can_carry_is_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from streamproc.commands.cli import main as cli

    path = tmp_path / "streamproc.yaml"
    path.write_text(
        "state_dir: x\ntopics:\n  - topic: auth-logs\n    family: auth-logs\n"
        "    max_record_bytes: 1048576\n"
    )
    assert cli(["check-config", "-c", str(path)]) == 1
    first = capsys.readouterr().err.strip().splitlines()[0]
    assert first.startswith(f"{path}:5: ") and "max_record_bytes" in first and "1040384" in first


@pytest.mark.kafka
async def test_failures_with_a_huge_username_are_repartitioned_under_its_hash_and_still_fire(
    kafka, receiver, make_config
) -> None:
    """An unkeyed topic: brute_force runs on the username repartition topic. Six failures of a
    600 KB username go there keyed by its SHA-256, all to one partition, and fire there."""
    from streamproc.pipeline.repartition import topic_name

    topic = f"auth-{uuid.uuid4().hex[:8]}"
    group = f"g-{uuid.uuid4().hex[:8]}"
    username = "u" * 600_000
    values = _failures(username, "ua", n=6)
    await produce(kafka.bootstrap_servers, topic, values, partitions=3)
    config = make_config(
        bootstrap=kafka.bootstrap_servers, group=group, topics=[topic], urls=[receiver.url("json")]
    )
    runtime = Runtime(config)
    await _run_until(
        runtime, lambda: runtime.stats.alerts_by_kind.get("brute_force", 0) >= 1, "the alert"
    )
    assert runtime.stats.dead_letters == 0
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic_name(config, config.bindings[0], "username"),
        bootstrap_servers=kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=16 * 1024 * 1024,
        group_id=f"reader-{uuid.uuid4().hex[:8]}",
    )
    await consumer.start()
    seen = []
    try:
        for _ in range(50):
            for tp, msgs in (await consumer.getmany(timeout_ms=200)).items():
                seen.extend((tp.partition, m.key) for m in msgs)
            if len(seen) >= 6:
                break
    finally:
        await consumer.stop()
    assert len(seen) == 6
    assert {key for _, key in seen} == {hashlib.sha256(username.encode()).hexdigest().encode()}
    assert len({partition for partition, _ in seen}) == 1


# -- notify dead letters without Kafka ---------------------------------------------------------


def _digest_record(n: int) -> dict:
    """A notify dead letter holding a digest of ``n`` alerts of about 60 KB each (each within
    the 64 KiB alert cap)."""
    from streamproc.alerts import Alert, fingerprint

    alerts = []
    for i in range(n):
        key = {"username": f"user{i}", "ip_address": "203.0.113.7"}
        alerts.append(
            Alert(
                kind="brute_force",
                severity="high",
                status="firing",
                key=key,
                fingerprint=fingerprint("brute_force", key, i),
                event_time=1.0,
                title=f"brute force {i}",
                body="b",
                evidence={f"sample{j}": "s" * 1000 for j in range(60)},
            ).to_dict()
        )
    return {
        "failed_at": 1.0,
        "reason": "delivery_failed",
        "channel": "json",
        "attempts": 3,
        "error": "HTTP 500",
        "alerts": alerts,
    }


async def test_a_digest_dead_lettered_to_the_file_is_split_into_lines_that_each_fit(
    tmp_path: Path,
) -> None:
    from streamproc.notify.undelivered import FILE_NAME, DeadLetters

    record = _digest_record(40)  # 2.4 MB as one line
    await DeadLetters(tmp_path).write([record])
    lines = (tmp_path / FILE_NAME).read_bytes().splitlines()
    assert len(lines) > 1
    assert all(len(line) + 1 <= MAX_DEAD_LETTER_BYTES for line in lines)
    parts = [orjson.loads(line) for line in lines]
    assert all(
        {k: v for k, v in p.items() if k != "alerts"}
        == {k: v for k, v in record.items() if k != "alerts"}
        for p in parts
    )
    assert [a for p in parts for a in p["alerts"]] == record["alerts"]  # all of them, in order


async def test_when_the_dead_letter_topic_fails_the_file_fallback_is_split_too(
    tmp_path: Path,
) -> None:
    from streamproc.notify.undelivered import FILE_NAME, DeadLetters

    async def broker_down(records: list[dict]) -> None:
        raise OSError("connection refused")

    await DeadLetters(tmp_path, broker_down).write([_digest_record(40)])
    lines = (tmp_path / FILE_NAME).read_bytes().splitlines()
    assert len(lines) > 1 and all(len(line) + 1 <= MAX_DEAD_LETTER_BYTES for line in lines)
    assert sum(len(orjson.loads(line)["alerts"]) for line in lines) == 40


async def test_a_notify_dead_letter_with_a_huge_error_text_still_fits_one_line(
    tmp_path: Path,
) -> None:
    from streamproc.notify.undelivered import FILE_NAME, DeadLetters

    record = _digest_record(1) | {"error": "E" * 2_000_000}
    await DeadLetters(tmp_path).write([record])
    [line] = (tmp_path / FILE_NAME).read_bytes().splitlines()
    d = orjson.loads(line)
    assert len(line) < MAX_DEAD_LETTER_BYTES and d["error"].endswith("chars]")
    assert d["alerts"][0]["fingerprint"] == record["alerts"][0]["fingerprint"]

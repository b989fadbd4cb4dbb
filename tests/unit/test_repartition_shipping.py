"""What a source task ships to a repartition topic: the records its detectors there can use,
then a progress mark of each source partition (pipeline/repartition.py), and that judging
those gives the alerts that shipping every record gives."""

from __future__ import annotations

import random
import textwrap
import zlib
from typing import Any

import orjson
import pytest

from streamproc.config import parse_config
from streamproc.decode import RawRecord
from streamproc.detectors import REGISTRY
from streamproc.detectors.password_spray import PasswordSpray
from streamproc.events import SOURCE_PROGRESS
from streamproc.pipeline.batches import EVERY_PARTITION
from streamproc.pipeline.repartition import decode
from streamproc.pipeline.runtime import Judge
from streamproc.traffic import generate
from tests.streams import BASE_TS
from tests.unit.test_rules_sigma import FAILED

PARTITIONS = 6  # of each repartition topic, as these tests route them
SOURCES = 3  # partitions of the source topic


def _auth_config(keyed_by: str | None = "username") -> Any:
    binding: dict[str, Any] = {"topic": "logins", "family": "auth-logs"}
    if keyed_by is not None:
        binding["keyed_by"] = keyed_by
    return parse_config(
        {"kafka": {"bootstrap_servers": "127.0.0.1:1"}, "topics": [binding]}, file=None
    )


def _generated(n: int, seed: int, trouble: bool = False) -> list[RawRecord]:
    """The generator's auth records (sprays, brute force, slow attackers among ordinary
    logins) on SOURCES partitions of "logins", keyed by username. ``trouble``: neighbours
    swapped (out of order), now and then a record hours behind (late) or two days ahead (a
    jump)."""
    rng = random.Random(seed)
    out: list[RawRecord] = []
    offsets = [0] * SOURCES
    for family, key, value in generate("auth", n, seed=seed).merged_bytes():
        if family != "auth-logs":
            continue
        if trouble:
            roll = rng.random()
            if roll < 0.005:
                record = orjson.loads(value)
                record["timestamp"] = (
                    "2020-01-01T00:00:00Z" if roll < 0.004 else "2099-01-01T00:00:00Z"
                )
                value = orjson.dumps(record)
        p = zlib.crc32(key or b"") % SOURCES
        out.append(RawRecord(value, "logins", p, offsets[p], key))
        offsets[p] += 1
    if trouble:
        for i in range(0, len(out) - 1, 7):  # out of order within a partition
            a, b = out[i], out[i + 1]
            if a.partition == b.partition:
                out[i] = RawRecord(b.value, a.topic, a.partition, a.offset, b.key)
                out[i + 1] = RawRecord(a.value, b.topic, b.partition, b.offset, a.key)
    return out


def _landed(
    outbox: list[tuple[str, Any, bytes]], offsets: dict[tuple[str, int], int]
) -> list[RawRecord]:
    """The outbox as records of the partitions they land on (crc32 stands in for murmur2):
    a keyed copy on its key's, a progress mark on every one."""
    out = []
    for topic, key, value in outbox:
        parts = range(PARTITIONS) if key is EVERY_PARTITION else [zlib.crc32(key) % PARTITIONS]
        for p in parts:
            o = offsets.get((topic, p), 0)
            offsets[topic, p] = o + 1
            out.append(RawRecord(value, topic, p, o))
    return out


def _judged_through_kafka(
    config: Any, records: list[RawRecord], batch: int, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[Any], list[Any], Judge]:
    """Each source partition's records judged ``batch`` at a time, as fetches bring them,
    live; what they shipped read back a moment later, each repartition partition's records
    in order."""
    judge = Judge(config, partitioned=True, repartition=True)
    judge.partitions_of = lambda topic: SOURCES
    judge.source_behind = lambda topic, partition: False
    by_partition: dict[int, list[RawRecord]] = {}
    for r in records:
        by_partition.setdefault(r.partition, []).append(r)
    alerts: list[Any] = []
    dead: list[Any] = []
    offsets: dict[tuple[str, int], int] = {}
    now = 1000.0
    for i in range(0, max(map(len, by_partition.values())), batch):
        shipped = []
        for p in sorted(by_partition):
            chunk = by_partition[p][i : i + batch]
            if chunk:
                out, dls = judge.judge(chunk, "kafka", now)
                alerts += out
                dead += dls
                shipped += _landed(judge.take_outbox(), offsets)
        now += 0.1
        for p in range(PARTITIONS):
            mine = [r for r in shipped if r.partition == p]
            if mine:
                out, dls = judge.judge(mine, "kafka", now)
                alerts += out
                dead += dls
        now += 0.1
    alerts += judge.tick(now + 10)
    alerts += judge.finish()
    return alerts, dead, judge


def _rows(alerts: list[Any], kind: str) -> list[tuple]:
    return sorted(
        (a.fingerprint, a.event_time, a.title, orjson.dumps(a.evidence, default=str))
        for a in alerts
        if a.kind == kind
    )


@pytest.mark.parametrize("columns", [True, False], ids=["columns", "events"])
def test_only_failures_then_a_mark_a_batch_go_to_password_spray(
    columns: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAMPROC_COLUMNS", "1" if columns else "0")
    judge = Judge(_auth_config(), partitioned=True, repartition=True)
    [(field, topic)] = judge.repartition_targets["logins"]
    assert field == "ip_address"
    records = [r for r in _generated(8000, seed=4) if r.partition == 1][:900]
    failures = [r for r in records if not orjson.loads(r.value)["success"]]
    assert 0 < len(failures) < len(records) / 4
    copies = []
    for start in range(0, len(records), 300):
        chunk = records[start : start + 300]
        judge.judge(chunk, "kafka")
        outbox = judge.take_outbox()
        assert {t for t, _, _ in outbox} == {topic}
        *its_copies, (_, key, mark) = outbox  # the batch's mark comes after its copies
        assert key is EVERY_PARTITION
        assert all(k is not EVERY_PARTITION for _, k, _ in its_copies)
        copies += its_copies
        ts, data, src = decode(mark)
        assert data is SOURCE_PROGRESS
        assert src == ["logins", 1, chunk[-1].offset]
        events, _ = judge.decoder("logins").decode_batch(
            [r.value for r in chunk], "logins", 1, chunk[0].offset
        )
        assert ts == max(ev.ts for ev in events)
    # (a partition's first batch starts its stream time, record by record)
    assert judge.frame_batches == (2 if columns else 0)
    # each failure, in order, keyed by its address
    assert [decode(v)[2][2] for _, _, v in copies] == [r.offset for r in failures]
    assert [k for _, k, _ in copies] == [
        orjson.loads(r.value)["ip_address"].encode() for r in failures
    ]
    assert judge.stats.repartitioned_out == len(failures)
    assert judge.stats.progress_marks_out == 3


def test_a_repartition_topic_with_a_detector_that_needs_every_record_gets_every_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # unkeyed: brute_force, compromise_suspected (successes after brute force), unusual_login
    # (successes) and distributed_brute_force are re-keyed by username
    judge = Judge(_auth_config(keyed_by=None), partitioned=True, repartition=True)
    records = [r for r in _generated(3000, seed=5) if r.partition == 0][:400]
    judge.judge(records, "kafka")
    outbox = judge.take_outbox()
    by_user = [v for t, _, v in outbox if t.endswith(".username")]
    assert [decode(v)[2][2] for v in by_user] == [r.offset for r in records]
    assert [k for t, k, _ in outbox if t.endswith(".ip_address")][-1] is EVERY_PARTITION


def _ship_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(PasswordSpray, "prefilter_reads_record_only", False)


def _one_task(config: Any, records: list[RawRecord]) -> list[Any]:
    """The reference: one task judging every record, nothing re-keyed."""
    judge = Judge(config, partitioned=False)
    alerts, _ = judge.judge(records, "kafka")
    return alerts + judge.finish()


@pytest.mark.parametrize("trouble", [False, True], ids=["clean", "late-forged-swapped"])
@pytest.mark.parametrize("columns", [True, False], ids=["columns", "events"])
def test_shipping_only_failures_finds_every_spray_one_task_finds(
    columns: bool, trouble: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAMPROC_COLUMNS", "1" if columns else "0")
    records = _generated(60_000, seed=6, trouble=trouble)
    config = _auth_config()
    sprays = _rows(_one_task(config, records), "password_spray")
    assert len(sprays) == 2  # the generator's two
    got, dead, judge = _judged_through_kafka(config, records, 400, monkeypatch)
    if trouble:
        # the same alerts: the merge hands the swapped neighbours over in time order, where
        # one task took them as they came, so the 20th account (the alert's time and
        # samples) may be another
        assert [(r[0], r[2]) for r in _rows(got, "password_spray")] == [
            (r[0], r[2]) for r in sprays
        ]
    else:
        assert _rows(got, "password_spray") == sprays
    assert judge.stats.repartitioned_in == judge.stats.repartitioned_out < len(records) / 10
    assert judge.stats.progress_marks_in == PARTITIONS * judge.stats.progress_marks_out > 0
    assert {d.reason for d in dead} <= {"late", "time_jump"}
    assert bool(dead) == trouble
    if not trouble:
        # shipping every record finds the same
        with monkeypatch.context() as patch:
            _ship_everything(patch)
            want, _, everything = _judged_through_kafka(config, records, 400, monkeypatch)
        assert everything.stats.progress_marks_out == 0
        assert everything.stats.repartitioned_out == len(records)
        assert _rows(want, "password_spray") == sprays


def test_a_forged_time_in_a_source_opens_no_merge(monkeypatch: pytest.MonkeyPatch) -> None:
    """A mark says how far its source's task has judged (its stream time), not the newest
    time a record of the batch claimed: a forged one, held there as a jump, reaches one
    repartition partition as a copy (a failure) or none, never every merge through the
    marks, which would let the sources' copies through in arrival order, not time order."""
    monkeypatch.setenv("STREAMPROC_COLUMNS", "0")
    judge = Judge(_auth_config(), partitioned=True, repartition=True)
    records = [r for r in _generated(3000, seed=7) if r.partition == 2][:300]
    forged = orjson.loads(records[150].value) | {"timestamp": "2099-01-01T00:00:00Z"}
    records[150] = RawRecord(orjson.dumps(forged), "logins", 2, records[150].offset)
    judge.judge(records, "kafka")
    marks = [v for _, k, v in judge.take_outbox() if k is EVERY_PARTITION]
    [(ts, _, src)] = [decode(v) for v in marks]
    assert src == ["logins", 2, records[-1].offset]
    assert ts == judge.engine(("logins", "logins", 2)).partition_time(("logins", 2)) < 2e9


def test_a_source_with_nothing_to_ship_holds_no_one_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Live, a repartitioned task waits for every source partition of its topic before it
    lets a record out (detectors/merge.py). A source whose batch held no failure ships only
    its mark, and that mark is what lets the others' failures through at once rather than
    after the merge's wait."""
    monkeypatch.setenv("STREAMPROC_COLUMNS", "0")
    judge = Judge(_auth_config(), partitioned=True, repartition=True)
    judge.partitions_of = lambda topic: 2
    judge.source_behind = lambda topic, partition: False

    def login(i: int, user: str, ok: bool) -> bytes:
        return orjson.dumps(
            {
                "timestamp": BASE_TS + i,
                "username": user,
                "ip_address": "198.51.100.9",
                "success": ok,
            }
        )

    # partition 0: a spray of 20 users; partition 1: successes of the same minutes
    spray = [RawRecord(login(i, f"v{i}", False), "logins", 0, i) for i in range(20)]
    calm = [RawRecord(login(i, "calm", True), "logins", 1, i) for i in range(30)]
    offsets: dict[tuple[str, int], int] = {}
    now = 1000.0
    shipped = []
    for batch in (spray, calm):
        judge.judge(batch, "kafka", now)
        shipped += _landed(judge.take_outbox(), offsets)
    marks = [r for r in shipped if decode(r.value)[1] is SOURCE_PROGRESS]
    assert {decode(r.value)[2][1] for r in marks} == {0, 1}

    def deliver(records: list[RawRecord]) -> list[Any]:
        alerts: list[Any] = []
        for p in range(PARTITIONS):
            mine = [r for r in records if r.partition == p]
            if mine:
                out, dead = judge.judge(mine, "kafka", now + 0.1)
                assert dead == []
                alerts += out
        return [a for a in alerts if a.kind == "password_spray"]

    [fired] = deliver(shipped)  # at once: source 1's mark says it has nothing older
    assert fired.title == "Password spray from 198.51.100.9: 20 accounts"


def test_without_the_marks_the_failures_wait_for_the_quiet_source(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The control of the test above: the same copies without source 1's mark are held
    until that source has been quiet for the merge's wait."""
    monkeypatch.setenv("STREAMPROC_COLUMNS", "0")
    judge = Judge(_auth_config(), partitioned=True, repartition=True)
    judge.partitions_of = lambda topic: 2
    judge.source_behind = lambda topic, partition: False
    spray = [
        RawRecord(
            orjson.dumps(
                {
                    "timestamp": BASE_TS + i,
                    "username": f"v{i}",
                    "ip_address": "198.51.100.9",
                    "success": False,
                }
            ),
            "logins",
            0,
            i,
        )
        for i in range(20)
    ]
    judge.judge(spray, "kafka", 1000.0)
    copies = [
        r for r in _landed(judge.take_outbox(), {}) if decode(r.value)[1] is not SOURCE_PROGRESS
    ]
    alerts: list[Any] = []
    for p in range(PARTITIONS):
        mine = [r for r in copies if r.partition == p]
        if mine:
            alerts += judge.judge(mine, "kafka", 1000.1)[0]
    assert [a for a in alerts if a.kind == "password_spray"] == []
    later = judge.tick(1000.1 + 10)  # source 1 quiet for longer than the wait
    assert [a.kind for a in later] == ["password_spray"]


SCENARIO = {
    "auth-logs": "auth",
    "api-access-logs": "api",
    "cicd-events": "cicd",
    "support-tickets": "tickets",
}


@pytest.mark.parametrize(
    "kind", sorted(k for k, cls in REGISTRY.items() if cls.prefilter_reads_record_only)
)
def test_a_detector_that_says_its_prefilter_reads_the_record_alone_does(kind: str) -> None:
    """A source task asks fresh detectors, never the ones judging (pipeline/runtime.py
    ``_ship_filter``): what a detector that has judged half a stream passes of the other half
    must be what a fresh one passes, by its predicate and by its column expression."""
    from streamproc.contracts import get_contract
    from streamproc.decode.frames import frame_reader_for

    cls = REGISTRY[kind]
    family = cls.family
    config = parse_config({"topics": [{"topic": "t", "family": family}]}, file=None)
    binding = config.bindings[0]
    values = [
        v for f, _, v in generate(SCENARIO[family], 6000, seed=2).merged_bytes() if f == family
    ]
    decoder = Judge(config).decoder("t")
    events, dead = decoder.decode_batch(values, "t", 0, 0)
    assert not dead and len(events) > 200
    half = len(events) // 2
    used, fresh = cls(None, None), cls(None, None)
    used.process(events[:half])
    rest = events[half:]
    for detector in (used, fresh):
        assert detector.prefilter() is not None and detector.column_prefilter() is not None
    passed = [[bool(d.prefilter()(ev.data)) for ev in rest] for d in (used, fresh)]
    assert passed[0] == passed[1] and any(passed[0])
    reader = frame_reader_for(get_contract(family), "json", None, binding.max_record_bytes, 32)
    assert reader is not None
    reader.read(values[:half])  # (a first read learns the fields beyond the contract)
    frame = reader.read(values[half:])
    assert frame is not None
    picked = [frame.where(d.column_prefilter()) for d in (used, fresh)]
    assert picked[0] == picked[1]
    if kind != "sql_injection":  # (narrower on purpose: see test_frames.py)
        assert set(picked[0]) >= {i for i, p in enumerate(passed[0]) if p}


def test_a_source_without_a_stream_time_yet_marks_its_oldest_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A partition's first records are judged as they come, with no stream time until a
    few agree (detectors/engine.py): its mark says the oldest time of the batch, never the
    newest (here a forged one)."""
    monkeypatch.setenv("STREAMPROC_COLUMNS", "0")
    judge = Judge(_auth_config(), partitioned=True, repartition=True)

    def login(ts: str, ok: bool) -> bytes:
        return orjson.dumps(
            {"timestamp": ts, "username": "ann", "ip_address": "203.0.113.5", "success": ok}
        )

    first = [
        RawRecord(login("2026-03-01T10:00:05Z", True), "logins", 0, 7),
        RawRecord(login("2099-01-01T00:00:00Z", True), "logins", 0, 8),
    ]
    judge.judge(first, "kafka")
    assert judge.engine(("logins", "logins", 0)).partition_time(("logins", 0)) == float("-inf")
    [(_, key, mark)] = judge.take_outbox()
    assert key is EVERY_PARTITION
    ts, data, src = decode(mark)
    assert data is SOURCE_PROGRESS and src == ["logins", 0, 8]
    assert ts == 1772359205.0  # 2026-03-01T10:00:05Z


def test_a_mark_is_json_whatever_float_its_time_is() -> None:
    import numpy as np

    from streamproc.pipeline.repartition import encode_mark

    for ts in (np.float64(1772359205.5), 1772359205.5, 1772359205):
        assert orjson.loads(encode_mark(ts, "logins", 0, 9)) == {
            "ts": 1772359205.5 if ts != 1772359205 else 1772359205.0,
            "src": ["logins", 0, 9],
        }


# -- rules: a rule re-keyed is shipped the records its condition matches ----------------------

ADDRESS_RULES = """
- name: failures-by-address
  family: auth-logs
  type: frequency
  filter: {success: false}
  key: [ip_address]
  window: 300
  threshold: 12
- name: accounts-by-address
  family: auth-logs
  type: cardinality
  filter: {success: false}
  key: [ip_address]
  field: username
  window: 600
  threshold: 8
- name: failure-agents-by-address
  family: auth-logs
  type: change
  filter: {success: false, user_agent: {exists: true}}
  key: [ip_address]
  field: user_agent
- name: vpn-failure-by-address
  family: auth-logs
  type: any
  filter: {success: false, service: vpn}
  key: [ip_address]
  realert: 600
"""


# a Sigma correlation: >= 15 failed logins from one address within 10 minutes
SIGMA_FAILED = textwrap.dedent(FAILED)
SIGMA_BY_ADDRESS = """
title: Failures from one address
name: failures_from_one_address
level: high
correlation:
  type: event_count
  rules: [failed_login]
  group-by: [SourceIp]
  timespan: 10m
  condition: {gte: 15}
"""


def _rules_config(tmp_path: Any, rules: str, *sigma: str) -> Any:
    """logins (auth-logs, keyed by username) with ``rules`` (a rules file) and ``sigma``
    (Sigma rules, one a file)."""
    from streamproc.config import parse_config_text

    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "r.yaml").write_text(rules)
    (tmp_path / "sigma").mkdir(exist_ok=True)
    for i, rule in enumerate(sigma):
        (tmp_path / "sigma" / f"s{i}.yml").write_text(rule)
    cfg = tmp_path / "streamproc.yaml"
    cfg.write_text(
        "kafka: {bootstrap_servers: '127.0.0.1:1'}\n"
        "topics: [{topic: logins, family: auth-logs, keyed_by: username}]\n"
        "rules: [rules/]\n" + ("sigma: [sigma/]\n" if sigma else "")
    )
    config = parse_config_text(cfg.read_text(), file=str(cfg))
    assert not config.rules.skipped, config.rules.skipped
    return config


def _rule_rows(alerts: list[Any]) -> list[tuple]:
    return sorted(
        (a.kind, a.fingerprint, a.event_time, a.title, orjson.dumps(a.evidence, default=str))
        for a in alerts
        if a.kind.startswith(("rule:", "sigma:"))
    )


@pytest.mark.parametrize("columns", [True, False], ids=["columns", "events"])
def test_rules_re_keyed_are_shipped_their_matches_and_fire_as_with_every_record(
    columns: bool, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamproc.rules.types import RuleDetector

    monkeypatch.setenv("STREAMPROC_COLUMNS", "1" if columns else "0")
    records = _generated(60_000, seed=6)
    config = _rules_config(tmp_path, ADDRESS_RULES, SIGMA_FAILED, SIGMA_BY_ADDRESS)
    got, dead, judge = _judged_through_kafka(config, records, 400, monkeypatch)
    fired = _rule_rows(got)
    assert not dead
    # every rule fired, and only the failures (and the marks) were shipped
    assert {r[0] for r in fired} == {
        "rule:failures-by-address",
        "rule:accounts-by-address",
        "rule:failure-agents-by-address",
        "rule:vpn-failure-by-address",
        "sigma:failures_from_one_address",
    }
    failures = sum(not orjson.loads(r.value)["success"] for r in records)
    assert judge.stats.repartitioned_out == failures < len(records) / 10
    assert judge.stats.progress_marks_out > 0
    with monkeypatch.context() as patch:
        patch.setattr(RuleDetector, "prefilter_reads_record_only", False)
        want, _, everything = _judged_through_kafka(config, records, 400, monkeypatch)
    assert everything.stats.repartitioned_out == len(records)
    assert fired == _rule_rows(want)
    # and what one task judging every record finds
    assert fired == _rule_rows(_one_task(config, records))


def test_a_new_term_rule_re_keyed_is_shipped_every_record(tmp_path: Any) -> None:
    """new_term's watermark forgets a key (whose next value is learnt, not reported): it
    must move with every record, so a repartition topic with one is shipped every record."""
    from streamproc.pipeline.repartition import internal_bindings, plan, ship_filter

    new_term = """
- name: new-agent-by-address
  family: auth-logs
  type: new_term
  filter: {success: false}
  key: [ip_address]
  field: user_agent
"""

    def by_address(rules: str) -> tuple[set[str], Any]:
        config = _rules_config(tmp_path, rules)
        kinds = plan(config, config.bindings[0])[1]["ip_address"]
        (internal,) = internal_bindings(config, config.bindings[0])
        return kinds, ship_filter(config, internal, kinds)

    kinds, picks = by_address(ADDRESS_RULES)
    assert {"password_spray", "rule:failures-by-address"} <= kinds and picks is not None
    kinds, picks = by_address(ADDRESS_RULES + new_term)
    assert "rule:new-agent-by-address" in kinds and picks is None


def test_a_source_marks_vouch_for_the_times_its_task_judged() -> None:
    """A repartitioned task's copies of one source can be hours apart where the source ships
    only what is used (every record in between judged there): up to the time the source's
    marks say its task has judged, a copy is no jump, and it is judged in its time order.
    Beyond it, the jump rule holds a copy as before (a forged time reaches a task as a copy)."""
    from streamproc.detectors.engine import DetectorEngine
    from streamproc.detectors.merge import SourceMerge
    from streamproc.events import Event

    class Seen(PasswordSpray):
        judged: list[float] = []

        def process(self, events: list[Event]) -> list[Any]:
            Seen.judged += [e.ts - BASE_TS for e in events]
            return []

    def copy(hours: float, offset: int) -> Event:
        data = {"username": f"u{offset}", "ip_address": "198.51.100.9", "success": False}
        return Event("auth-logs", BASE_TS + hours * 3600, data, "logins", 0, offset)

    def mark(hours: float) -> Event:
        return Event("auth-logs", BASE_TS + hours * 3600, SOURCE_PROGRESS, "logins", 0, 0)

    for vouched in (True, False):
        Seen.judged = []
        engine = DetectorEngine([Seen(None, None)])
        engine.merge = SourceMerge("auth-logs", partitions_of=lambda topic: 1)
        engine.process([copy(0, 1), copy(0.5, 2)], 1000.0, [mark(0.5)])
        # three hours later by the source's clock; two copies in that time
        engine.process([copy(3, 3), copy(3.25, 4)], 1000.1, [mark(3.5)] if vouched else [])
        if not vouched:
            assert Seen.judged == [0, 1800]  # the two copies wait as a jump's candidates
            continue
        assert Seen.judged == [0, 1800, 3 * 3600, 3.25 * 3600]
        # a forged copy, days ahead of what the source has judged, waits as one
        engine.process([copy(99, 5)], 1000.2, [mark(3.75)])
        assert Seen.judged == [0, 1800, 3 * 3600, 3.25 * 3600]
        state = engine.snapshot()
        assert state["vouched"] == [["logins", 0, BASE_TS + 3.75 * 3600]]
        assert [e[0] - BASE_TS for e in state["held"][0][3]] == [99 * 3600]
        # a restart keeps what the marks said
        again = DetectorEngine([Seen(None, None)])
        again.merge = SourceMerge("auth-logs", partitions_of=lambda topic: 1)
        again.restore(state)
        assert again.snapshot()["vouched"] == state["vouched"]


def test_a_rule_selects_from_columns_what_its_condition_passes_whatever_it_judged(
    tmp_path: Any,
) -> None:
    """What a source task ships a re-keyed rule, by its column expression over a batch's
    frame, is exactly the records its condition passes, and a rule that has judged half a
    stream passes the other half as a fresh one does."""
    from streamproc.contracts import get_contract
    from streamproc.decode.frames import frame_reader_for
    from streamproc.detectors import build_detectors
    from streamproc.pipeline.repartition import internal_bindings

    config = _rules_config(tmp_path, ADDRESS_RULES, SIGMA_FAILED, SIGMA_BY_ADDRESS)
    records = _generated(20_000, seed=3)
    values = [r.value for r in records]
    events, dead = Judge(config).decoder("logins").decode_batch(values, "logins", 0, 0)
    assert not dead
    half = len(events) // 2
    (internal,) = internal_bindings(config, config.bindings[0])
    rules = [d for d in build_detectors(config, internal) if d.kind.startswith(("rule:", "sigma:"))]
    assert {d.kind for d in rules} >= {
        "rule:failures-by-address",
        "sigma:failures_from_one_address",
    }
    reader = frame_reader_for(
        get_contract("auth-logs"), "json", None, config.bindings[0].max_record_bytes, 32
    )
    assert reader is not None
    reader.read(values[:half])  # (a first read learns the fields beyond the contract)
    frame = reader.read(values[half:])
    assert frame is not None
    for used in rules:
        assert type(used).prefilter_reads_record_only
        fresh = next(d for d in build_detectors(config, internal) if d.kind == used.kind)
        used.process(events[:half])
        passed = [[bool(d.prefilter()(ev.data)) for ev in events[half:]] for d in (used, fresh)]
        assert passed[0] == passed[1] and any(passed[0]) and not all(passed[0])
        picked = [frame.where(d.ship_column_prefilter()) for d in (used, fresh)]
        assert picked[0] == picked[1] == [i for i, p in enumerate(passed[0]) if p]
        assert used.column_prefilter() is None  # (judged through the shared matcher)

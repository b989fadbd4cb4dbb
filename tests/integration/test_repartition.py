"""Repartitioning: keyed detectors see every record of their key, however the topic is keyed."""

from __future__ import annotations

import asyncio
import uuid
import zlib
from typing import Any

import orjson
import pytest

from streamproc.config import parse_config_text
from streamproc.decode import RawRecord
from streamproc.detectors.merge import SourceMerge
from streamproc.events import Event
from streamproc.pipeline.batches import EVERY_PARTITION
from streamproc.pipeline.repartition import plan, topic_name
from streamproc.pipeline.runtime import Judge
from tests.runtimes import running
from tests.streams import BASE_TS, committed_total, produce, read_records
from tests.waiting import wait_until


def test_detectors_run_where_records_arrive_when_the_topic_key_suits_them() -> None:
    config = parse_config_text("topics: [{topic: a, family: auth-logs, keyed_by: username}]")
    local, remote = plan(config, config.bindings[0])
    assert {
        "brute_force",
        "compromise_suspected",
        "unusual_login",
        "distributed_brute_force",
    } <= local
    assert remote == {"ip_address": {"password_spray"}}


def test_an_unkeyed_topic_re_keys_every_keyed_detector() -> None:
    config = parse_config_text("topics: [{topic: a, family: auth-logs}]")
    local, remote = plan(config, config.bindings[0])
    assert local == set()
    assert remote["username"] >= {"brute_force", "compromise_suspected", "unusual_login"}
    assert remote["ip_address"] == {"password_spray"}


def test_default_topics_are_keyed_by_their_contract_key() -> None:
    config = parse_config_text("")
    by_name = {b.name: b for b in config.bindings}
    assert by_name["auth-logs"].keyed_by == "username"
    assert by_name["api-access-logs"].keyed_by == "ip_address"
    _, remote = plan(config, by_name["api-access-logs"])
    assert remote == {}


def test_repartitioned_records_are_judged_once_even_when_produced_twice() -> None:
    config = parse_config_text("""
kafka: {bootstrap_servers: "127.0.0.1:1"}
topics: [{topic: logins, family: auth-logs}]
""")
    judge = Judge(config, repartition=True)
    events = [
        {"timestamp": BASE_TS + i, "username": "bob", "ip_address": "192.0.2.7", "success": False}
        for i in range(5)
    ]
    judge.judge([RawRecord(orjson.dumps(e), "logins", 1, 100 + i) for i, e in enumerate(events)])
    shipped = judge.take_outbox()
    by_user = [(t, k, v) for t, k, v in shipped if t.endswith(".username")]
    assert len(by_user) == 5 and all(k == b"bob" for _, k, _ in by_user)
    topic = by_user[0][0]
    # a crash before the checkpoint: the same records are produced (and read) twice
    twice = [RawRecord(v, topic, 0, i) for i, (_, _, v) in enumerate(by_user + by_user)]
    alerts, dead = judge.judge(twice)
    assert dead == []
    brute = [a for a in alerts if a.kind == "brute_force"]
    assert len(brute) == 1
    assert brute[0].evidence.get("failures", 5) == 5
    # the alert points at the record a user can find, not the internal topic
    assert brute[0].source["topic"] == "logins" and brute[0].source["partition"] == 1


@pytest.mark.kafka
async def test_unkeyed_topic_detects_spray_and_brute_force_across_partitions(
    kafka, receiver, make_config
) -> None:
    topic, group = f"logins-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    records = []
    for i in range(25):  # one address tries 25 users: a password spray
        records.append(
            {
                "timestamp": BASE_TS + i * 5,
                "username": f"u{i}",
                "ip_address": "198.51.100.66",
                "success": False,
            }
        )
    for j in range(5):  # and one user is hammered from another address
        records.append(
            {
                "timestamp": BASE_TS + 200 + j * 10,
                "username": "carol",
                "ip_address": "203.0.113.99",
                "success": False,
            }
        )
    records.sort(key=lambda r: r["timestamp"])
    # no keys: the producer spreads them over the partitions
    await produce(kafka.bootstrap_servers, topic, [orjson.dumps(r) for r in records], partitions=4)
    config = make_config(
        bootstrap=kafka.bootstrap_servers,
        group=group,
        topics=[topic],
        urls=[receiver.url()],
        notify={"rate": 0},
    )
    async with running(config) as runtime:
        await wait_until(
            lambda: len(receiver.accepted) >= 2 and runtime.stats.records_in >= len(records),
            30,
            "every record and two alerts",
            detail=lambda: runtime.stats,
        )
        await asyncio.sleep(1)  # anything extra that was going to arrive
    kinds = sorted(runtime.stats.alerts_by_kind.items())
    assert kinds == [("brute_force", 1), ("password_spray", 1)], kinds
    assert len(receiver.accepted) == 2
    # every record is a failure: copied to both topics (by ip_address only failures are)
    assert runtime.stats.repartitioned_in == 2 * len(records)
    assert await committed_total(kafka.bootstrap_servers, group, topic) == len(records)
    # password_spray's topic also carries each source batch's progress mark, on each of its
    # partitions (by username, compromise_suspected needs every record: no marks there)
    marks = runtime.stats.progress_marks_in
    assert marks >= 6 and marks == 6 * runtime.stats.progress_marks_out
    rp = topic_name(config, config.bindings[0], "ip_address")
    assert await committed_total(kafka.bootstrap_servers, group, rp) == len(records) + marks


@pytest.mark.kafka
async def test_max_events_stops_once_the_repartitioned_copies_are_judged_too(
    kafka, receiver, make_config
) -> None:
    topic, group = f"logins-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    records = [
        {
            "timestamp": BASE_TS + i * 5,
            "username": f"u{i}",
            "ip_address": "198.51.100.66",
            "success": False,
        }
        for i in range(25)
    ]
    records += [
        {
            "timestamp": BASE_TS + 200 + j * 10,
            "username": "carol",
            "ip_address": "203.0.113.99",
            "success": False,
        }
        for j in range(5)
    ]
    await produce(kafka.bootstrap_servers, topic, [orjson.dumps(r) for r in records], partitions=4)
    config = make_config(
        bootstrap=kafka.bootstrap_servers,
        group=group,
        topics=[topic],
        urls=[receiver.url()],
        notify={"rate": 0},
    )
    # both detectors are judged on repartition topics, from copies of the records counted
    async with running(config, max_events=len(records)) as runtime:
        await asyncio.wait_for(runtime.wait(), 60)  # stops by itself
    assert runtime.stats.records_in == len(records)
    assert runtime.stats.repartitioned_in == runtime.stats.repartitioned_out == 2 * len(records)
    assert sorted(runtime.stats.alerts_by_kind.items()) == [
        ("brute_force", 1),
        ("password_spray", 1),
    ]


@pytest.mark.kafka
async def test_a_progress_mark_lands_on_every_partition_after_the_copies_before_it(kafka) -> None:
    from aiokafka import AIOKafkaProducer

    from streamproc.ops.broker import ensure_topics
    from streamproc.pipeline.batches import BatchWriter

    topic = f"rp-{uuid.uuid4().hex[:8]}"
    await ensure_topics({"bootstrap_servers": kafka.bootstrap_servers}, {topic: 3})
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    await producer.start()
    try:
        writer = BatchWriter(producer)
        copies = [(topic, f"user{i}".encode(), b"copy %d" % i) for i in range(30)]
        await asyncio.gather(*await writer.write([*copies, (topic, EVERY_PARTITION, b"mark")]))
    finally:
        await producer.stop()
    records = await read_records(kafka.bootstrap_servers, topic, 33)
    by_partition: dict[int, list[Any]] = {}
    for r in records:
        by_partition.setdefault(r.partition, []).append(r)
    assert sorted(by_partition) == [0, 1, 2]
    for got in by_partition.values():
        got.sort(key=lambda r: r.offset)
        assert got[-1].value == b"mark" and got[-1].key is None
        assert all(r.value.startswith(b"copy ") for r in got[:-1])
    assert len(records) == 33


# -- SourceMerge: a repartitioned task judges its sources in event-time order ------------------


def _landed(
    shipped: list[tuple[str, Any, bytes]], partitions: int = 6
) -> list[tuple[str, int, bytes]]:
    """An outbox's records as (topic, partition, value), in order: a keyed copy on the
    partition of its key (crc32 stands in for murmur2), a progress mark on every one."""
    out = []
    for t, k, v in shipped:
        if k is EVERY_PARTITION:
            out.extend((t, p, v) for p in range(partitions))
        else:
            out.append((t, zlib.crc32(k or b"") % partitions, v))
    return out


def _judged_with_copies(
    judge: Any, raws: list[RawRecord], now: float, offset: int
) -> tuple[list[Any], list[RawRecord], int]:
    """Judge one source partition's records: (alerts, their copies re-keyed by address as
    records of the repartition topic from ``offset`` on, the next offset)."""
    out, dead = judge.judge(raws, "kafka", now)
    assert dead == []
    copies = []
    for t, p, v in _landed(judge.take_outbox()):
        if t.endswith(".ip_address"):
            copies.append(RawRecord(v, t, p, offset))
            offset += 1
    return out, copies, offset


def _spray_backlog(benign_failures: bool = False) -> dict[int, list[dict]]:
    """A topic keyed by username, 4 partitions, two hours of backlog each. One address sprays
    24 users in its first 4 minutes; the users (so the failures) are spread over all four
    partitions. Benign logins from other addresses move every partition's stream time on:
    successes (only their sources' progress marks are shipped), or, with
    ``benign_failures``, failures (shipped: the repartitioned task's time moves with them)."""
    parts: dict[int, list[dict]] = {p: [] for p in range(4)}
    for i in range(24):
        parts[i % 4].append(
            {
                "timestamp": BASE_TS + i * 10,
                "username": f"victim{i}",
                "ip_address": "198.51.100.66",
                "success": False,
            }
        )
    for p, recs in parts.items():
        for k in range(720):  # one login every 10 s for two hours
            recs.append(
                {
                    "timestamp": BASE_TS + k * 10 + p,
                    "username": f"user{p}-{k % 50}",
                    "ip_address": f"192.0.2.{k % 200}",
                    "success": not benign_failures,
                }
            )
        recs.sort(key=lambda r: r["timestamp"])
    return parts


def _consume_partition_by_partition(partitions_of: object, benign_failures: bool = False) -> list:
    """Consume the backlog as a consumer far behind can: one partition's hours at a time
    (records of the next partition arriving within the merge's wait)."""
    config = parse_config_text("""
kafka: {bootstrap_servers: "127.0.0.1:1"}
topics: [{topic: logins, family: auth-logs}]
""")
    judge = Judge(config, repartition=True)
    judge.partitions_of = partitions_of  # type: ignore[assignment]
    now, alerts = 1000.0, []
    for p, recs in _spray_backlog(benign_failures).items():
        raws = [RawRecord(orjson.dumps(r), "logins", p, o) for o, r in enumerate(recs)]
        out, dead = judge.judge(raws, "kafka", now)
        alerts += out
        assert dead == []
        shipped = [
            (t, p, v) for t, p, v in _landed(judge.take_outbox()) if t.endswith(".ip_address")
        ]
        internal = [RawRecord(v, t, p, o) for o, (t, p, v) in enumerate(shipped)]
        out, dead = judge.judge(internal, "kafka", now + 0.1)
        alerts += out
        assert dead == []
        now += 0.5
    alerts += judge.tick(now + 10)  # every source quiet for longer than the wait
    return [a for a in alerts if a.kind == "password_spray"]


@pytest.mark.parametrize("benign_failures", [False, True])
def test_a_spray_spread_over_partitions_is_found_in_a_skewed_backlog(
    benign_failures: bool,
) -> None:
    sprays = _consume_partition_by_partition(lambda topic: 4, benign_failures)
    assert len(sprays) == 1
    # in event-time order it fires at the 20th user, exactly as on a topic keyed by address
    assert sprays[0].title == "Password spray from 198.51.100.66: 20 accounts"


def test_without_waiting_for_unseen_partitions_the_skewed_backlog_hides_the_spray() -> None:
    # The scenario above is a real trap: merging only the partitions heard from so far lets
    # partition 0's two hours through first, the watermark expires the address's window, and
    # the other partitions' failures arrive to an empty one. (Where only the spray's failures
    # are shipped, nothing else moves that task's time: the trap needs other copies.)
    assert _consume_partition_by_partition(None, benign_failures=True) == []


def _sources_judged_before_their_copies(stub_kafka: bool, benign_failures: bool = False) -> list:
    """The backlog as a busy loop can consume it: every source partition judged to its end
    first, then the repartition topic's backlog handed out one source's copies at a time, 3 s
    of wall time apart (longer than the merge's wait). No source is behind any more; their
    copies still are, in the repartition partitions (not caught up until the last)."""
    config = parse_config_text("""
kafka: {bootstrap_servers: "127.0.0.1:1"}
topics: [{topic: logins, family: auth-logs}]
""")
    judge = Judge(config, repartition=True)
    judge.partitions_of = lambda topic: 4
    backlog = [True]
    if stub_kafka:
        judge.source_behind = lambda topic, partition: False
        judge.source_caught_up = lambda topic, partition: topic == "logins" or not backlog
    now, alerts, copies = 1000.0, [], {}
    offset = 0
    for p, recs in _spray_backlog(benign_failures).items():
        raws = [RawRecord(orjson.dumps(r), "logins", p, o) for o, r in enumerate(recs)]
        out, copies[p], offset = _judged_with_copies(judge, raws, now, offset)
        alerts += out
    for p in sorted(copies):
        now += 3.0
        out, dead = judge.judge(copies[p], "kafka", now)
        alerts += out
        assert dead == []
    backlog.clear()  # the repartition partitions caught up
    alerts += judge.tick(now + 10)
    return [a for a in alerts if a.kind == "password_spray"]


@pytest.mark.parametrize("benign_failures", [False, True])
def test_a_source_judged_to_its_end_is_waited_for_while_its_copies_are_in_the_backlog(
    benign_failures: bool,
) -> None:
    # The source partitions are not behind, and each one's copies come 3 s after the last
    # one's: quiet for longer than the merge's wait. Their copies are still in the
    # repartition partitions' backlog, so the merge waits; letting the first partitions' two
    # hours through would expire the address's window before the others' failures arrive.
    sprays = _sources_judged_before_their_copies(stub_kafka=True, benign_failures=benign_failures)
    assert len(sprays) == 1
    assert sprays[0].title == "Password spray from 198.51.100.66: 20 accounts"


def test_without_a_kafka_source_to_ask_a_quiet_source_is_not_waited_for() -> None:
    # (a replay, or a test without Kafka: nothing says what is on its way; the wait decides)
    assert _sources_judged_before_their_copies(stub_kafka=False, benign_failures=True) == []


def _copies_of_a_shipping_source_come_late(tell_merges: bool) -> list:
    """Every source judged in two halves, 3 s apart (longer than the merge's wait); of the
    second halves' copies, source 0's arrive first and the others' 0.2 s later, as when the
    high watermark a consumer knows of a repartition partition lags what was produced to it:
    no source is behind, every repartition partition reads caught up."""
    config = parse_config_text("""
kafka: {bootstrap_servers: "127.0.0.1:1"}
topics: [{topic: logins, family: auth-logs}]
""")
    judge = Judge(config, repartition=True)
    judge.partitions_of = lambda topic: 4
    judge.source_behind = lambda topic, partition: False
    judge.source_caught_up = lambda topic, partition: True
    if not tell_merges:
        judge._shipping = lambda *args: None  # type: ignore[method-assign]
    alerts, offset = [], 0
    parts = _spray_backlog()
    split = BASE_TS + 120  # half the spray's failures on each side

    def judge_sources(half: int, now: float) -> dict[int, list[RawRecord]]:
        nonlocal offset
        copies: dict[int, list[RawRecord]] = {}
        for p, recs in parts.items():
            mine = [(o, r) for o, r in enumerate(recs) if (r["timestamp"] >= split) == half]
            raws = [RawRecord(orjson.dumps(r), "logins", p, o) for o, r in mine]
            out, copies[p], offset = _judged_with_copies(judge, raws, now, offset)
            alerts.extend(out)
        return copies

    def deliver(copies: list[RawRecord], now: float) -> None:
        out, dead = judge.judge(copies, "kafka", now)
        alerts.extend(out)
        assert dead == []

    first = judge_sources(0, 1000.0)
    deliver([c for p in sorted(first) for c in first[p]], 1000.1)
    second = judge_sources(1, 1003.0)
    deliver(second[0], 1003.1)
    deliver([c for p in (1, 2, 3) for c in second[p]], 1003.3)
    alerts.extend(judge.tick(1013.3))
    return [a for a in alerts if a.kind == "password_spray"]


def _out_of_order(monkeypatch: pytest.MonkeyPatch, tell_merges: bool) -> tuple[int, list]:
    """(records a merge released behind one it had released already, password_spray alerts)"""
    newest: dict[int, float] = {}
    late = [0]
    release = SourceMerge.release

    def watched(self: SourceMerge, now: float | None) -> list[Event]:
        out = release(self, now)
        for ev in out:
            if ev.ts < newest.get(id(self), float("-inf")):
                late[0] += 1
            newest[id(self)] = max(newest.get(id(self), float("-inf")), ev.ts)
        return out

    monkeypatch.setattr(SourceMerge, "release", watched)
    sprays = _copies_of_a_shipping_source_come_late(tell_merges)
    return late[0], sprays


def test_a_source_shipping_copies_here_is_not_quiet_before_they_arrive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    late, sprays = _out_of_order(monkeypatch, tell_merges=True)
    assert late == 0
    assert [a.title for a in sprays] == ["Password spray from 198.51.100.66: 20 accounts"]


def test_a_merge_told_only_what_arrives_lets_the_first_source_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the trap above: the merge heard sources 1-3 last 3 s ago, none is behind and the
    # repartition partitions read caught up, so source 0's second hour went out first
    late, _ = _out_of_order(monkeypatch, tell_merges=False)
    assert late > 0


def _merge_events(n_sources: int, per_source: int) -> list[Event]:
    return [
        Event("auth-logs", BASE_TS + i * n_sources + s, {"n": i, "s": s}, "logins", s, i)
        for s in range(n_sources)
        for i in range(per_source)
    ]


def test_merge_releases_in_event_time_order_up_to_the_slowest_active_source() -> None:
    merge = SourceMerge("auth-logs", wait=2.0)
    events = _merge_events(3, 10)  # source s, record i at BASE_TS + 3 i + s
    ts = lambda evs: [e.ts - BASE_TS for e in evs]  # noqa: E731
    fast = [e for e in events if e.partition == 0]
    assert merge.push(fast, 100.0) == fast  # the only source known: nothing to wait for
    slow = [e for e in events if e.partition != 0 and e.offset < 3]
    # sources 1 and 2 are at 7 and 8: everything up to 7 goes, in time order
    assert ts(merge.push(slow, 100.5)) == [1, 2, 4, 5, 7]
    rest = [e for e in events if e.partition != 0 and e.offset >= 3]
    # now source 0 (newest 27) is the slowest active one
    assert ts(merge.push(rest, 101.0)) == [8, 10, 11, 13, 14, 16, 17, 19, 20, 22, 23, 25, 26]
    assert len(merge) == 2
    # source 0 has said nothing for 2.5 s: no longer waited for; 1 and 2 still are
    assert ts(merge.release(102.5)) == [28]
    assert ts(merge.release(103.5)) == [29]
    assert len(merge) == 0


def test_merge_waits_for_partitions_not_heard_from_yet_then_gives_up_after_wait() -> None:
    merge = SourceMerge("auth-logs", wait=2.0, partitions_of=lambda topic: 3)
    events = _merge_events(3, 5)
    p0 = [e for e in events if e.partition == 0]
    assert merge.push(p0, 50.0) == []  # partitions 1 and 2 exist: wait for them
    assert merge.release(51.9) == []
    assert merge.release(52.1) == p0  # they said nothing for 2 s: go on without them


def test_merge_caps_what_it_holds_and_counts_the_overflow() -> None:
    merge = SourceMerge("auth-logs", wait=60.0, max_pending=10, partitions_of=lambda topic: 2)
    events = _merge_events(2, 30)
    out = merge.push([e for e in events if e.partition == 0], 0.0)
    assert len(merge) == 10 and merge.forced == 20
    assert [e.offset for e in out] == list(range(20))  # the oldest go first


def test_held_records_survive_a_checkpoint() -> None:
    merge = SourceMerge("auth-logs", wait=2.0, partitions_of=lambda topic: 2)
    events = _merge_events(2, 5)
    assert merge.push([e for e in events if e.partition == 0], 10.0) == []
    state = orjson.loads(orjson.dumps(merge.snapshot()))
    restored = SourceMerge("auth-logs", wait=2.0, partitions_of=lambda topic: 2)
    restored.restore(state)
    assert len(restored) == 5
    # the restored merge waits for the quiet source from its first call, then lets go
    assert restored.release(500.0) == []
    out = restored.release(502.5)
    assert [(e.ts, e.data, e.topic, e.partition, e.offset) for e in out] == [
        (e.ts, e.data, e.topic, e.partition, e.offset) for e in events if e.partition == 0
    ]


def test_merge_keeps_waiting_for_a_quiet_source_that_is_still_behind() -> None:
    # In a backlog the consumer can serve other topics for seconds: a partition with records
    # left to judge is not quiet, whatever the wall clock says.
    lagging = {("logins", 1)}
    merge = SourceMerge(
        "auth-logs",
        wait=2.0,
        partitions_of=lambda topic: 2,
        behind=lambda topic, partition: (topic, partition) in lagging,
    )
    events = _merge_events(2, 5)
    p0 = [e for e in events if e.partition == 0]
    assert merge.push(p0, 50.0) == []
    assert merge.release(60.0) == []  # 10 s without a word from partition 1, but behind
    lagging.clear()  # caught up (its last records were judged): quiet now
    assert merge.release(60.0) == p0


@pytest.mark.kafka
async def test_a_partition_with_records_not_judged_yet_is_behind_however_few(kafka) -> None:
    """The merge waits for a source that is behind: one not fetched from yet, a tail of
    fewer records than a batch, fetched but not handed out yet (the loop can be busy
    elsewhere for longer than the merge's wait), and the batch in progress until it is
    done."""
    from aiokafka import AIOKafkaProducer

    from streamproc.config import parse_config
    from streamproc.ops.broker import ensure_topics
    from streamproc.sources.kafka import KafkaSource

    topic = f"auth-{uuid.uuid4().hex[:8]}"
    config = parse_config(
        {
            "kafka": {
                "bootstrap_servers": kafka.bootstrap_servers,
                "group_id": f"g-{uuid.uuid4().hex[:8]}",
                "auto_offset_reset": "earliest",
            },
            "topics": [{"topic": topic, "family": "auth-logs"}],
        },
        file=None,
    )
    await ensure_topics(config.kafka.client_kwargs(), {topic: 1})
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    await producer.start()
    try:
        for i in range(50):  # one request each: the broker's high watermark is exact
            await producer.send_and_wait(topic, b'{"n": %d}' % i, partition=0)
    finally:
        await producer.stop()
    source = KafkaSource(config.kafka, topics=[topic], exclusive=True, max_records=30)
    await source.start()
    try:
        # assigned, nothing fetched yet: its records may be on their way
        assert source.behind(topic, 0)
        assert not source.behind(topic, 1)  # not a partition of this worker
        taken = []
        while not taken:
            batch = await source.next_batch(timeout=5.0)
            if batch is not None:
                taken = batch.records
        assert len(taken) == 30
        assert source.behind(topic, 0)  # 20 left, fewer than a batch: still behind
        source.done(batch)
        while len(taken) < 50:
            batch = await source.next_batch(timeout=5.0)
            if batch is not None:
                taken += batch.records
                # handed out, not judged yet: its repartitioned copies are not produced yet
                assert source.behind(topic, 0)
                source.done(batch)
        assert not source.behind(topic, 0) and source.caught_up(topic, 0)
    finally:
        await source.stop()

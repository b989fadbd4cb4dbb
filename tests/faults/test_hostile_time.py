"""Event time written by whoever writes the topic: one forged record must not blind detection.

The rules (detectors/engine.py): live, an event more than ``max_future_skew`` ahead of the
clock is dead-lettered ``future``; anywhere, a jump of a partition's stream time beyond
``max_time_jump`` waits for ``jump_confirmations`` further records and is dead-lettered
``time_jump`` when records near the old time contradict it; a JSON object that repeats a key
is dead-lettered ``duplicate_field``.
"""

from __future__ import annotations

import json
import time
import uuid

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamproc.commands.replay import ReplayInput, replay_records
from streamproc.config import load_config, parse_config_text
from streamproc.contracts import get_contract
from streamproc.decode import RecordDecoder
from streamproc.errors import ConfigError
from streamproc.events import Event
from streamproc.pipeline.runtime import Runtime
from tests.configs import binding
from tests.paths import REPO
from tests.runtimes import running
from tests.streams import auth_stream, dumps, produce, read_records
from tests.waiting import wait_until

TOPICS = REPO / "topics"
HOUR = 3600.0


def sample(family: str) -> list[bytes]:
    return (TOPICS / f"{family}.jsonl").read_bytes().splitlines()


def forged(line: bytes, timestamp: bytes) -> bytes:
    """A copy of a sample record with its timestamp replaced (raw JSON text)."""
    record = orjson.loads(line)
    record["timestamp"] = "@@"
    return orjson.dumps(record).replace(b'"@@"', timestamp)


def replay(family: str, lines: list[bytes]):
    return replay_records(load_config(None), [ReplayInput(family, lines=lines)])


def summary(result) -> dict[str, dict[str, int]]:
    return {kind: dict(counts) for kind, counts in result.by_kind().items()}


FUTURE = {
    "year 9999": b'"9999-12-31T23:59:59Z"',
    "epoch 99999999999": b"99999999999",
    "three days ahead": b'"2026-03-04T00:00:00Z"',
}


# -- replay: no wall clock, so the jump rule alone ---------------------------------------------


@pytest.mark.parametrize("timestamp", FUTURE.values(), ids=FUTURE.keys())
@pytest.mark.parametrize("at", [0, 5, 1200])
def test_one_future_auth_record_loses_no_alert_and_no_later_record(
    timestamp: bytes, at: int
) -> None:
    lines = sample("auth-logs")
    clean = replay("auth-logs", lines)
    attacked = replay("auth-logs", lines[:at] + [forged(lines[at], timestamp)] + lines[at:])
    assert summary(attacked) == summary(clean)
    # every genuine record is judged; the forged one is dead-lettered, not judged, unless it
    # is a partition's very first record (which has no time to jump from: judged, harmless)
    assert attacked.dead_letter_reasons() == ({} if at == 0 else {"time_jump": 1})
    assert attacked.events == clean.events + (1 if at == 0 else 0)


def test_one_future_ticket_does_not_fire_every_sla_timer_at_once() -> None:
    lines = sample("support-tickets")
    clean = replay("support-tickets", lines)
    attacked = replay(
        "support-tickets", lines[:20] + [forged(lines[20], FUTURE["year 9999"])] + lines[20:]
    )
    assert summary(attacked) == summary(clean)
    assert summary(clean)["sla_breach"]["firing"] == 2
    assert attacked.dead_letter_reasons() == {"time_jump": 1}


def test_one_future_host_sample_does_not_make_every_host_silent() -> None:
    lines = sample("host-metrics")
    clean = replay("host-metrics", lines)
    attacked = replay(
        "host-metrics", lines[:50] + [forged(lines[50], FUTURE["three days ahead"])] + lines[50:]
    )
    assert summary(attacked) == summary(clean)
    assert summary(clean)["host_silent"]["firing"] == 1


def _auth(ts: float, user: str = "alice", ok: bool = True) -> bytes:
    return orjson.dumps(
        {"timestamp": ts, "username": user, "ip_address": "203.0.113.9", "success": ok}
    )


def test_a_partition_idle_overnight_resumes_after_confirmation_without_losing_records() -> None:
    t0 = 1_790_000_000.0
    evening = [_auth(t0 + i * 60, f"u{i}") for i in range(30)]
    # eight hours later: a brute force, the first records after the gap
    morning = [_auth(t0 + 8 * HOUR + i * 10, "victim", ok=False) for i in range(6)]
    morning += [_auth(t0 + 8 * HOUR + 100 + i * 60, f"u{i}") for i in range(30)]
    result = replay("auth-logs", evening + morning)
    assert result.dead_letters == []
    assert result.events == len(evening) + len(morning)
    assert summary(result)["brute_force"]["firing"] == 1


def test_a_forged_record_between_genuine_gaps_is_contradicted_the_gap_still_confirmed() -> None:
    t0 = 1_790_000_000.0
    lines = [_auth(t0 + i * 60, f"u{i}") for i in range(10)]
    lines.append(_auth(t0 + 30 * 86400, "mallory"))  # a month ahead
    lines += [_auth(t0 + 8 * HOUR + i * 60, f"u{i}") for i in range(10)]  # a genuine gap
    result = replay("auth-logs", lines)
    assert [d.reason for d in result.dead_letters] == ["time_jump"]
    assert b"mallory" in result.dead_letters[0].raw
    assert result.events == 20


def test_a_forged_record_at_the_end_of_a_replay_that_something_contradicted_is_dead() -> None:
    t0 = 1_790_000_000.0
    lines = [_auth(t0 + i * 60, f"u{i}") for i in range(10)]
    lines += [_auth(t0 + 30 * 86400, "mallory"), _auth(t0 + 601, "u11")]
    result = replay("auth-logs", lines)
    assert result.dead_letter_reasons() == {"time_jump": 1}


def test_jump_options_are_per_binding_and_global_and_checked_with_a_line(tmp_path) -> None:
    config = parse_config_text("""
event_time: {max_time_jump: 600, jump_confirmations: 3}
topics:
  - {topic: a, family: auth-logs}
  - {topic: b, family: auth-logs, max_future_skew: 30, max_time_jump: 7200}
""")
    a, b = config.bindings
    assert (a.max_future_skew, a.max_time_jump, a.jump_confirmations) == (300.0, 600.0, 3)
    assert (b.max_future_skew, b.max_time_jump, b.jump_confirmations) == (30.0, 7200.0, 3)
    with pytest.raises(ConfigError) as err:
        parse_config_text(
            "topics:\n  - topic: a\n    family: auth-logs\n    max_future_skew: -5\n", file="c.yml"
        )
    assert "c.yml:4" in str(err.value) and "max_future_skew" in str(err.value)
    with pytest.raises(ConfigError) as err:
        parse_config_text("event_time:\n  jump_confirmations: 0\n", file="c.yml")
    assert "c.yml:2" in str(err.value)


# -- state: a held candidate is not confirmed by a restart ----------------------------------


def test_a_checkpoint_keeps_held_candidates_and_not_their_time() -> None:
    from streamproc.detectors import build_engine

    config = load_config(None)
    binding = next(b for b in config.bindings if b.family == "auth-logs")
    decoder = RecordDecoder(binding.contract)
    t0 = 1_790_000_000.0

    def events(lines: list[bytes], first: int) -> list[Event]:
        return [
            decoder.decode(raw, "auth-logs", 0, first + i)  # type: ignore[misc]
            for i, raw in enumerate(lines)
        ]

    engine = build_engine(config, binding)
    engine.process(events([_auth(t0 + i) for i in range(5)], 0))
    engine.process(events([_auth(t0 + 86400, "mallory")], 5))
    state = orjson.loads(orjson.dumps(engine.snapshot()))
    assert max(ts for _, _, ts in state["stream_time"]) == t0 + 4  # not the candidate's

    restored = build_engine(config, binding)
    restored.restore(state)
    _, rejected = restored.process(events([_auth(t0 + 5), _auth(t0 + 6)], 6))
    assert [(r.reason, r.event.data["username"]) for r in rejected] == [("time_jump", "mallory")]
    assert restored.stream_time() == t0 + 6


# -- live: the clock -------------------------------------------------------------------------


def test_live_future_event_is_dead_lettered_and_moves_nothing() -> None:
    from streamproc.decode import RawRecord
    from streamproc.pipeline.runtime import Judge

    judge = Judge(load_config(None), clock=time.time)
    now = time.time()
    records = [RawRecord(_auth(now - 100 + i, f"u{i}"), "auth-logs", 0, i) for i in range(5)]
    records.append(RawRecord(_auth(now + 400, "mallory", ok=False), "auth-logs", 0, 5))
    records += [
        RawRecord(_auth(now - 90 + i, "victim", ok=False), "auth-logs", 0, 6 + i) for i in range(5)
    ]
    alerts, dead = judge.judge(records, "kafka", now)
    assert [(d.reason, d.offset) for d in dead] == [("future", 5)]
    assert "max_future_skew=300" in dead[0].detail
    [engine] = judge.engines.values()
    assert engine.stream_time() == now - 86
    assert [a.kind for a in alerts] == ["brute_force"]


@pytest.mark.kafka
async def test_future_timestamp_through_kafka_is_dead_lettered_and_detection_goes_on(
    kafka, receiver, make_config
) -> None:

    topic = f"auth-{uuid.uuid4().hex[:8]}"
    group = f"g-{uuid.uuid4().hex[:8]}"
    stream = auth_stream(400, 2, base=time.time() - 3 * HOUR, span=2 * HOUR)
    values = dumps(stream)
    bomb = {**stream[50], "timestamp": "9999-12-31T23:59:59Z", "username": "mallory"}
    values = values[:50] + [orjson.dumps(bomb)] + values[50:]
    await produce(kafka.bootstrap_servers, topic, values, partitions=1)
    config = make_config(
        bootstrap=kafka.bootstrap_servers,
        group=group,
        topics=[topic],
        urls=[receiver.url("json")],
    )
    async with running(config) as runtime:
        await wait_until(
            lambda: runtime.stats.records_in >= len(values) and len(receiver.accepted) >= 2,
            60,
            "every record and two alerts",
            detail=lambda: runtime.stats,
        )
    assert runtime.stats.dead_by_reason == {"future": 1}
    assert runtime.stats.alerts_by_kind == {"brute_force": 2}
    dlq = await read_records(kafka.bootstrap_servers, f"{topic}.dlq", 1)
    seen = [orjson.loads(r.value) for r in dlq]
    assert [(d["reason"], d["source"]["offset"]) for d in seen] == [("future", 50)]


def _ticket(ts: float, n: int) -> bytes:
    return orjson.dumps(
        {
            "timestamp": ts,
            "event": "created",
            "ticket_id": f"TCK-{n}",
            "priority": "urgent",
            "customer_email": f"c{n}@example.com",
            "subject": "Cannot log in",
        }
    )


async def _run_until(config, done, what: str, idle_after: float | None = None) -> Runtime:
    runtime = Runtime(config)
    if idle_after is not None:
        runtime.judge.idle_after = idle_after  # quiet sooner than thirty seconds
    await runtime.start()
    try:
        await wait_until(lambda: done(runtime), 60, what, detail=lambda: runtime.stats)
    finally:
        await runtime.stop()
    return runtime


@pytest.mark.kafka
async def test_a_sparse_partition_gives_every_alert_once_it_is_caught_up(
    kafka, receiver, make_config
) -> None:
    # support tickets two hours apart, read from the start: every ticket after the third is
    # a jump beyond max_time_jump, and nothing comes after the last ones to confirm them
    # (one partition: keyed by ticket_id, so every detector judges it where it is read)
    topic = f"tickets-{uuid.uuid4().hex[:8]}"
    group = f"g-{uuid.uuid4().hex[:8]}"
    base = time.time() - 20 * HOUR
    values = [_ticket(base + k * 2 * HOUR, k) for k in range(8)]
    await produce(kafka.bootstrap_servers, topic, values, partitions=1)
    expected = summary(replay("support-tickets", values))
    assert expected["ticket_created"]["firing"] == 16  # for the team and the customer
    # every ticket but the last is unanswered past its 1 h SLA, and all but the last two
    # past the apology time (2 h)
    assert expected["sla_breach"]["firing"] == 7 + 6
    config = make_config(
        bootstrap=kafka.bootstrap_servers,
        group=group,
        topics=[binding(topic, "support-tickets", keyed_by="ticket_id")],
        urls=[receiver.url("json")],
    )
    total = sum(counts["firing"] for counts in expected.values())
    runtime = await _run_until(config, lambda rt: rt.stats.alerts >= total, "every alert")
    assert runtime.stats.records_in == len(values)
    assert runtime.stats.dead_by_reason == {}
    assert {kind: {"firing": n} for kind, n in runtime.stats.alerts_by_kind.items()} == {
        kind: {"firing": c["firing"]} for kind, c in expected.items() if c.get("firing")
    }


@pytest.mark.kafka
async def test_a_sparse_unkeyed_topic_gives_every_repartitioned_alert_a_replay_gives(
    kafka, receiver, make_config
) -> None:
    # the same tickets on three partitions, produced without a key: sla_breach (keyed by
    # ticket_id) is judged on the repartition topic, where each task sees two or three
    # tickets of each source partition -- too few for the start rule, and jumps nothing
    # after them confirms
    topic = f"tickets-{uuid.uuid4().hex[:8]}"
    group = f"g-{uuid.uuid4().hex[:8]}"
    base = time.time() - 20 * HOUR
    values = [_ticket(base + k * 2 * HOUR, k) for k in range(8)]
    await produce(kafka.bootstrap_servers, topic, values, partitions=3)
    expected = summary(replay("support-tickets", values))
    assert expected["sla_breach"]["firing"] == 7 + 6
    config = make_config(
        bootstrap=kafka.bootstrap_servers,
        group=group,
        topics=[binding(topic, "support-tickets")],
        urls=[receiver.url("json")],
    )
    total = sum(counts["firing"] for counts in expected.values())
    runtime = await _run_until(
        config, lambda rt: rt.stats.alerts >= total, "every alert", idle_after=2.0
    )
    assert runtime.stats.records_in == len(values)
    assert runtime.stats.dead_by_reason == {}
    assert {kind: {"firing": n} for kind, n in runtime.stats.alerts_by_kind.items()} == {
        kind: {"firing": c["firing"]} for kind, c in expected.items() if c.get("firing")
    }


@pytest.mark.kafka
async def test_forged_records_in_a_backlog_are_dead_lettered_even_once_it_is_caught_up(
    kafka, receiver, make_config
) -> None:
    topic = f"auth-{uuid.uuid4().hex[:8]}"
    group = f"g-{uuid.uuid4().hex[:8]}"
    now = time.time()
    stream = auth_stream(400, 2, base=now - 6 * HOUR, span=2 * HOUR)
    values = dumps(stream)

    def bomb(i: int) -> bytes:  # hours ahead of its partition, yet not ahead of the clock
        return orjson.dumps({**stream[i], "timestamp": now - 60, "username": "mallory"})

    # one in the middle of the backlog, contradicted by the records after it; one just
    # before its end, contradicted once (fewer than jump_confirmations) when it is caught up
    values = values[:50] + [bomb(50)] + values[50:-1] + [bomb(398)] + values[-1:]
    await produce(kafka.bootstrap_servers, topic, values, partitions=1)
    config = make_config(
        bootstrap=kafka.bootstrap_servers,
        group=group,
        topics=[topic],
        urls=[receiver.url("json")],
    )
    runtime = await _run_until(
        config,
        lambda rt: (
            rt.stats.records_in >= len(values)
            and rt.stats.dead_letters >= 2
            and rt.stats.alerts >= 2
        ),
        "every record, two dead letters and two alerts",
    )
    assert runtime.stats.dead_by_reason == {"time_jump": 2}
    assert runtime.stats.alerts_by_kind == {"brute_force": 2}
    [engine] = [e for task, e in runtime.judge.engines.items() if task[1] == topic]
    assert engine.events_in == len(values) - 2  # every genuine record judged where it is read


# -- duplicate keys ------------------------------------------------------------------------------

DECODER = RecordDecoder(get_contract("auth-logs"))


@pytest.mark.parametrize(
    "raw",
    [
        b'{"timestamp":"2026-01-01T00:00:00Z","username":"a","ip_address":"10.0.0.1",'
        b'"success":false,"timestamp":"9999-12-31T23:59:59Z"}',
        b'{"timestamp":1767225600,"username":"a","ip_address":"10.0.0.1","success":true,'
        b'"timestamp" :99999999999}',
        b'{"timestamp":1767225600,"username":"a","ip_address":"10.0.0.1","success":true,'
        b'"timestamp"\n:99999999999}',
        b'{"timestamp":1767225600,"username":"a","ip_address":"10.0.0.1","success":true,'
        b'"x":"y\\":z","success":false}',
        b'{"timestamp":1767225600,"username":"a","ip_address":"10.0.0.1","success":true,'
        b'"geo":{"city":"x","city":"y"}}',
    ],
    ids=["flat", "space before colon", "newline before colon", "quote-colon in a value", "nested"],
)
def test_a_repeated_key_is_rejected_as_duplicate_field(raw: bytes) -> None:
    out = DECODER.decode(raw)
    assert not isinstance(out, Event)
    assert out.reason == "duplicate_field", out.detail


def test_keys_that_only_look_repeated_inside_values_are_fine() -> None:
    raw = (
        b'{"timestamp":1767225600,"username":"a\\":\\"b","ip_address":"10.0.0.1",'
        b'"success":true,"user_agent":"x \\"timestamp\\": 1"}'
    )
    assert isinstance(DECODER.decode(raw), Event)


KEYS = st.sampled_from(["timestamp", "username", "ip_address", "success", "a", "b", 'q":'])
VALUES = st.one_of(st.text(alphabet='ab": \\\n', max_size=6), st.integers(0, 9), st.booleans())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pairs=st.lists(st.tuples(KEYS, VALUES), min_size=1, max_size=7),
    seps=st.lists(st.sampled_from([":", " :", ": ", "\t:", "\n:", ":\n"]), min_size=7, max_size=7),
)
def test_duplicate_keys_are_never_missed_whatever_the_spacing(pairs, seps) -> None:
    raw = (
        "{"
        + ",".join(json.dumps(k) + seps[i] + json.dumps(v) for i, (k, v) in enumerate(pairs))
        + "}"
    ).encode()
    out = DECODER.decode(raw)
    repeated = len({k for k, _ in pairs}) != len(pairs)
    assert (getattr(out, "reason", None) == "duplicate_field") == repeated, raw


def test_a_repeated_key_hidden_by_spacing_in_a_batch_of_compact_records_is_rejected() -> None:
    from streamproc.decode import RawRecord
    from streamproc.pipeline.runtime import Judge

    judge = Judge(load_config(None))
    good = [RawRecord(_auth(1_790_000_000.0 + i, f"u{i}"), "auth-logs", 0, i) for i in range(50)]
    hidden = RawRecord(
        b'{"timestamp":1790000060,"username":"a","ip_address":"10.0.0.1",'
        b'"success":true,"timestamp" :99999999999}',
        "auth-logs",
        0,
        50,
    )
    plain = RawRecord(
        b'{"timestamp":1790000061,"username":"a","ip_address":"10.0.0.1",'
        b'"success":true,"username":"b"}',
        "auth-logs",
        0,
        51,
    )
    _, dead = judge.judge([*good, hidden, plain], "kafka")
    assert [(d.reason, d.offset) for d in dead] == [
        ("duplicate_field", 50),
        ("duplicate_field", 51),
    ]


def test_a_checkpoint_that_kept_a_forged_future_time_does_not_blind_a_live_restart() -> None:
    from streamproc.detectors import build_engine

    config = load_config(None)
    binding = next(b for b in config.bindings if b.family == "auth-logs")
    decoder = RecordDecoder(binding.contract)
    now = time.time()
    poisoned = {
        "stream_time": [["auth-logs", 0, 253402300799.0]],
        "watermark": 253402300799.0 - 60,
        "detectors": {},
    }
    engine = build_engine(config, binding)
    engine.clock = time.time
    engine.restore(poisoned)
    events = [
        decoder.decode(_auth(now - 10 + i, "victim", ok=False), "auth-logs", 0, i) for i in range(5)
    ]
    alerts, rejected = engine.process(events, now)  # type: ignore[arg-type]
    assert rejected == []
    assert [a.kind for a in alerts] == ["brute_force"]


def _raw(ts: float, offset: int, user: str = "alice", ok: bool = True):
    from streamproc.decode import RawRecord

    return RawRecord(_auth(ts, user, ok), "auth-logs", 0, offset)


def test_live_a_partition_quiet_overnight_moves_with_the_clock_at_once() -> None:
    from streamproc.pipeline.runtime import Judge

    judge = Judge(load_config(None))
    t0, wall = 1_790_000_000.0, 5_000.0
    judge.judge([_raw(t0 + i, i, f"u{i}") for i in range(10)], "kafka", wall)
    # eight hours of wall time later the partition resumes, eight hours on in event time:
    # nothing to confirm, the clock moved as far
    morning = [_raw(t0 + 8 * HOUR + i * 10, 10 + i, "victim", ok=False) for i in range(5)]
    alerts, dead = judge.judge(morning, "kafka", wall + 8 * HOUR)
    assert dead == []
    assert [a.kind for a in alerts] == ["brute_force"]


def test_live_a_held_record_that_agrees_with_the_clock_is_let_go_once_its_partition_is_quiet() -> (
    None
):
    from streamproc.pipeline.runtime import Judge

    t0 = 1_790_000_000.0
    clock_now = [t0 + 2 * HOUR]
    judge = Judge(load_config(None), clock=lambda: clock_now[0])
    wall = 5_000.0
    # a backlog two hours behind the clock, read back to back, then one record of today
    judge.judge([_raw(t0 + i, i, f"u{i}") for i in range(10)], "kafka", wall)
    alerts, dead = judge.judge([_raw(t0 + 2 * HOUR, 10, "late-comer")], "kafka", wall + 1)
    [engine] = judge.engines.values()
    assert dead == [] and engine.stream_time() == t0 + 9  # held, not judged yet
    judge.tick(wall + 40)  # the partition quiet for longer than idle_after (30 s)
    assert engine.stream_time() == t0 + 2 * HOUR
    assert engine.events_in == 11


def _ticket_raw(ts: float, n: int, offset: int, partition: int = 0):
    from streamproc.decode import RawRecord

    return RawRecord(_ticket(ts, n), "support-tickets", partition, offset)


def test_live_candidates_wait_while_their_partition_is_behind_and_are_judged_once_caught_up() -> (
    None
):
    from streamproc.pipeline.runtime import Judge

    t0 = 1_790_000_000.0
    judge = Judge(load_config(None), clock=lambda: t0 + 30 * HOUR)
    caught_up: set[tuple[str, int]] = set()
    judge.source_caught_up = lambda topic, partition: (topic, partition) in caught_up
    wall = 5_000.0
    tickets = [_ticket_raw(t0 + k * 2 * HOUR, k, k) for k in range(5)]
    alerts, dead = judge.judge(tickets, "kafka", wall)
    [engine] = judge.engines.values()
    # the first three start the partition (at the smallest time); the jumps to 6 h and 8 h
    # wait: the rest of a backlog may still contradict them
    assert dead == [] and engine.events_in == 3 and engine.stream_time() == t0
    assert judge.tick(wall + 1) == []
    caught_up.add(("support-tickets", 0))
    alerts = judge.tick(wall + 2)
    assert engine.events_in == 5 and engine.stream_time() == t0 + 8 * HOUR
    assert sum(a.kind == "ticket_created" for a in alerts) == 4  # team and customer, twice
    # and the tickets' clocks move on to 8 h: four breaches (1 h SLA), three apologies (2 h)
    assert sum(a.kind == "sla_breach" for a in alerts) == 4 + 3


def test_live_a_candidate_contradicted_once_is_dead_lettered_when_its_partition_is_caught_up() -> (
    None
):
    from streamproc.pipeline.runtime import Judge

    t0 = 1_790_000_000.0
    judge = Judge(load_config(None), clock=lambda: t0 + 30 * HOUR)
    judge.source_caught_up = lambda topic, partition: True
    records = [_raw(t0 + i, i, f"u{i}") for i in range(10)]
    records += [_raw(t0 + 20 * HOUR, 10, "mallory"), _raw(t0 + 11, 11, "u11")]
    alerts, dead = judge.judge(records, "kafka", 5_000.0)
    assert [(d.reason, d.offset) for d in dead] == [("time_jump", 11 - 1)]
    assert "then its partition caught up" in dead[0].detail
    [engine] = judge.engines.values()
    assert engine.stream_time() == t0 + 11


def test_live_a_partition_of_two_records_has_a_stream_time_once_caught_up() -> None:
    from streamproc.pipeline.runtime import Judge

    t0 = 1_790_000_000.0
    judge = Judge(load_config(None), clock=lambda: t0 + 30 * HOUR)
    judge.source_caught_up = lambda topic, partition: True
    judge.judge([_ticket_raw(t0, 1, 0), _ticket_raw(t0 + 2 * HOUR, 2, 1)], "kafka", 5_000.0)
    [engine] = judge.engines.values()
    # too few records for the start rule to pick one; the smallest, as it would
    assert engine.stream_time() == t0


def test_live_a_device_topic_quiet_for_idle_after_counts_as_caught_up() -> None:
    from streamproc.decode import RawRecord
    from streamproc.pipeline.runtime import Judge

    config = parse_config_text("""
mqtt: {host: 127.0.0.1, port: 1883}
topics: [{family: host-metrics, mqtt_topic: "hosts/+/metrics"}]
""")
    t0 = 1_790_000_000.0
    judge = Judge(config, clock=lambda: t0 + 30 * HOUR)

    def sample(ts: float, mid: int) -> RawRecord:
        value = orjson.dumps({"timestamp": ts, "host": "db-1", "cpu_percent": 20.0})
        return RawRecord(value, "hosts/db-1/metrics", 0, mid)

    wall = 5_000.0
    # a device replays its buffer: samples two hours apart, then nothing
    judge.judge([sample(t0 + k * 2 * HOUR, k) for k in range(5)], "mqtt", wall)
    [engine] = judge.engines.values()
    assert engine.stream_time() == t0 and engine.events_in == 3  # two samples held
    judge.tick(wall + 10)
    assert engine.events_in == 3  # not quiet for idle_after (30 s) yet
    judge.tick(wall + 31)
    assert engine.stream_time() == t0 + 8 * HOUR
    assert engine.events_in == 5


def test_check_config_rejects_a_bad_event_time_option_at_its_line_and_shows_a_good_one(
    tmp_path, capsys
) -> None:
    from streamproc.commands.cli import main as cli

    path = tmp_path / "streamproc.yaml"
    path.write_text("topics:\n  - topic: logins\n    family: auth-logs\n    max_time_jump: soon\n")
    assert cli(["check-config", "-c", str(path)]) == 1
    first = capsys.readouterr().err.strip().splitlines()[0]
    assert first.startswith(f"{path}:4: ") and "max_time_jump" in first, first
    path.write_text(
        "event_time: {max_future_skew: 60}\ntopics:\n  - topic: logins\n    family: auth-logs\n"
    )
    assert cli(["check-config", "-c", str(path)]) == 0
    assert "future skew 60s" in capsys.readouterr().out

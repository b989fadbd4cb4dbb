"""MQTT devices keep their own clocks, and anyone may publish under a new topic.

Each MQTT topic (device) has its own stream time in its binding's engine: a device whose
clock lags far behind the others does not hold back the binding's timers, topics idle for an
hour are forgotten, at most ``MQTT_MAX_TOPICS`` are kept, and metrics are labelled by the
binding, not by the topic (detectors/engine.py, runtime.Judge).
"""

from __future__ import annotations

import time
import uuid

import aiomqtt
import orjson
import pytest

from streamproc.config import parse_config_text
from streamproc.decode import RawRecord
from streamproc.ops.metrics import Metrics
from streamproc.pipeline.runtime import MQTT_MAX_TOPICS, MQTT_TOPIC_TTL, Judge, Runtime
from tests.waiting import wait_until

T0 = 1_790_000_000.0  # 2026-09-21T14:13:20Z
FILTER = "hosts/+/metrics"


def mqtt_judge(metrics: Metrics | None = None) -> Judge:
    config = parse_config_text(f"""
mqtt: {{host: 127.0.0.1, port: 1883}}
topics: [{{family: host-metrics, mqtt_topic: "{FILTER}"}}]
""")
    return Judge(config, metrics=metrics)


def sample(host: str, ts: float, mid: int) -> RawRecord:
    value = orjson.dumps({"timestamp": ts, "host": host, "cpu_percent": 20.0})
    return RawRecord(value, f"hosts/{host}/metrics", 0, mid)


def test_a_device_with_a_1970_clock_does_not_hold_back_host_silent() -> None:
    judge = mqtt_judge()
    alerts, late = [], []
    mid = 0
    for step in range(60):  # ten minutes, a sample every 10 s
        batch = []
        for host in ("web-1", "web-2", "db-1"):
            if host == "db-1" and step >= 20:
                continue  # db-1 goes silent after 200 s
            batch.append(sample(host, T0 + step * 10, mid := mid + 1))
        batch.append(sample("clock-1970", step * 10.0, mid := mid + 1))  # keeps reporting
        out, dead = judge.judge(batch, "mqtt", now=1000.0 + step * 10)
        alerts += out
        late += dead
    titles = [a.title for a in alerts if a.kind == "host_silent"]
    assert "Host db-1 stopped reporting" in titles
    # the device whose time stays in 1970 looks silent to its binding: once, no flapping
    assert sorted(titles) == ["Host clock-1970 stopped reporting", "Host db-1 stopped reporting"]
    # the device's records are behind timers already fired: dead-lettered, not judged
    assert late and {d.reason for d in late} == {"late"}
    assert {d.topic for d in late} == {"hosts/clock-1970/metrics"}


def test_many_distinct_topics_keep_bounded_time_entries_and_one_series_per_binding() -> None:
    metrics = Metrics(process_metrics=False)
    judge = mqtt_judge(metrics)
    n = MQTT_MAX_TOPICS + 2_000
    now = 1000.0
    for start in range(0, n, 2_000):
        batch = [sample(f"dev-{i}", T0 + i * 0.01, i) for i in range(start, start + 2_000)]
        batch.append(RawRecord(b"not json", f"hosts/junk-{start}/metrics", 0, -1))
        judge.judge(batch, "mqtt", now)
        now += 1.0
    [engine] = judge.engines.values()

    def tracked() -> int:
        state = engine.snapshot()
        return len(
            {(t, p) for t, p, _ in state["stream_time"]}
            | {(t, p) for t, p, _ in state.get("warm", [])}
        )

    assert tracked() <= MQTT_MAX_TOPICS
    judge.tick(now + MQTT_TOPIC_TTL + 1)  # every topic idle for longer than the TTL
    assert tracked() == 0

    def series(name: str) -> list[dict[str, str]]:
        return [s.labels for m in metrics.registry.collect() for s in m.samples if s.name == name]

    assert series("streamproc_records_in_total") == [{"topic": FILTER}]
    assert series("streamproc_dead_letters_total") == [{"topic": FILTER, "reason": "not_json"}]
    assert metrics.value("streamproc_records_in_total", {"topic": FILTER}) == n + n // 2_000


def test_a_device_a_few_minutes_behind_is_still_judged() -> None:
    judge = mqtt_judge()
    dead_all = []
    mid = 0
    for step in range(30):
        batch = [sample(host, T0 + step * 10, mid := mid + 1) for host in ("web-1", "web-2")]
        batch.append(sample("slow-clock", T0 - 180 + step * 10, mid := mid + 1))
        _, dead = judge.judge(batch, "mqtt", now=1000.0 + step * 10)
        dead_all += dead
    assert dead_all == []
    [engine] = judge.engines.values()
    assert engine.events_in == 90


@pytest.mark.mqtt
async def test_a_candidate_contradicted_then_quiet_is_in_the_dead_letter_file_after_a_stop(
    mosquitto, receiver, tmp_path
) -> None:
    # a device replays its buffer: three samples start its clock, one two hours ahead waits
    # for confirmation, one near the old time contradicts it once; then the device is quiet,
    # which for a device topic means caught up: the candidate is rejected on an idle tick
    topic = f"t{uuid.uuid4().hex[:8]}/db-1/metrics"
    config = parse_config_text(f"""
mqtt: {{host: {mosquitto.host}, port: {mosquitto.port}, qos: 1,
       client_id: sp-{uuid.uuid4().hex[:8]},
       dead_letter_file: {tmp_path}/dead-letters.jsonl}}
topics: [{{family: host-metrics, mqtt_topic: "{topic.split("/")[0]}/+/metrics"}}]
notify: {{urls: ["{receiver.url("json")}"], group_wait: 0s}}
state_dir: {tmp_path}
""")
    base = time.time() - 5 * 3600
    times = [base, base + 10, base + 20, base + 3 * 3600, base + 30]
    runtime = Runtime(config)
    runtime.judge.idle_after = 1.0  # quiet (caught up) after a second, not thirty
    await runtime.start()
    try:
        async with aiomqtt.Client(
            mosquitto.host, mosquitto.port, identifier=f"pub-{uuid.uuid4().hex[:6]}"
        ) as client:
            for ts in times:
                await client.publish(
                    topic,
                    orjson.dumps({"timestamp": ts, "host": "db-1", "cpu_percent": 20.0}),
                    qos=1,
                )
        await wait_until(
            lambda: runtime.stats.dead_letters >= 1, 30, "the forged record's dead letter"
        )
    finally:
        await runtime.stop()
    assert runtime.stats.dead_by_reason == {"time_jump": 1}
    dead = [
        orjson.loads(line) for line in (tmp_path / "dead-letters.jsonl").read_bytes().splitlines()
    ]
    assert [(d["reason"], d["source"]["topic"]) for d in dead] == [("time_jump", topic)]
    assert "then its partition caught up" in dead[0]["detail"]

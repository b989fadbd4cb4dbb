"""Repartitioning: keyed detectors see every record of their key, however the topic is keyed."""

from __future__ import annotations

import asyncio
import uuid

import orjson
import pytest

from streamproc.config import parse_config_text
from streamproc.decode import RawRecord
from streamproc.repartition import plan, topic_name
from streamproc.runtime import Judge, Runtime
from tests.streams import BASE_TS, committed_total, produce


def test_detectors_run_where_records_arrive_when_the_topic_key_suits_them() -> None:
    config = parse_config_text("topics: [{topic: a, family: auth-logs, keyed_by: username}]")
    local, remote = plan(config, config.bindings[0])
    assert {"brute_force", "compromise_suspected", "unusual_login",
            "distributed_brute_force"} <= local
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
    events = [{"timestamp": BASE_TS + i, "username": "bob", "ip_address": "192.0.2.7",
               "success": False} for i in range(5)]
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
        kafka, receiver, tmp_path) -> None:
    topic, group = f"logins-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    records = []
    for i in range(25):  # one address tries 25 users: a password spray
        records.append({"timestamp": BASE_TS + i * 5, "username": f"u{i}",
                        "ip_address": "198.51.100.66", "success": False})
    for j in range(5):  # and one user is hammered from another address
        records.append({"timestamp": BASE_TS + 200 + j * 10, "username": "carol",
                        "ip_address": "203.0.113.99", "success": False})
    records.sort(key=lambda r: r["timestamp"])
    # no keys: the producer spreads them over the partitions
    await produce(kafka.bootstrap_servers, topic, [orjson.dumps(r) for r in records],
                  partitions=4)
    config = parse_config_text(f"""
kafka: {{bootstrap_servers: "{kafka.bootstrap_servers}", group_id: {group},
        alert_topic: {group}.alerts}}
topics: [{{topic: {topic}, family: auth-logs}}]
notify: {{urls: ["{receiver.url()}"], group_wait: 0s, group_by: [fingerprint], rate: 0}}
state_dir: {tmp_path}
""")
    runtime = Runtime(config)
    await runtime.start()
    try:
        for _ in range(300):
            if len(receiver.accepted) >= 2 and runtime.stats.records_in >= len(records):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1)
    finally:
        await runtime.stop()
    kinds = sorted(runtime.stats.alerts_by_kind.items())
    assert kinds == [("brute_force", 1), ("password_spray", 1)], kinds
    assert len(receiver.accepted) == 2
    assert runtime.stats.repartitioned_in == 2 * len(records)
    assert await committed_total(kafka.bootstrap_servers, group, topic) == len(records)
    rp = topic_name(config.bindings[0], "ip_address")
    assert await committed_total(kafka.bootstrap_servers, group, rp) == len(records)

"""Deterministic test streams with a known number of incidents (no randomness in counts)."""

from __future__ import annotations

import random
from datetime import UTC
from typing import Any

import orjson

BASE_TS = 1_790_000_000.0  # 2026-09-21T14:13:20Z


def auth_stream(
    n: int, incidents: int, *, seed: int = 7, base: float = BASE_TS, span: float = 6 * 3600
) -> list[dict[str, Any]]:
    """``n`` auth events in event-time order with exactly ``incidents`` brute-force incidents.

    Background failures are rare and spread over many (user, ip) pairs, so no pair reaches 5
    failures within an hour by chance: each pair gets at most 2 background failures.
    Each incident is 6 failures from one attacker ip on one user within 10 minutes.
    """
    rng = random.Random(seed)
    users = [f"user{i:04d}" for i in range(500)]
    # Each user logs in from a few addresses of one home network, from one country, as real
    # users do; so the background raises no unusual_login, spray or distributed alerts.
    home = {u: f"10.{i // 250}.{i % 250}" for i, u in enumerate(users)}
    events: list[dict[str, Any]] = []
    failures_per_pair: dict[tuple[str, str], int] = {}
    n_background = n - incidents * 6
    for i in range(n_background):
        ts = base + span * i / max(1, n_background)
        user = users[rng.randrange(len(users))]
        ip = f"{home[user]}.{rng.randrange(1, 4)}"
        success = True
        if rng.random() < 0.05 and failures_per_pair.get((user, ip), 0) < 2:
            failures_per_pair[(user, ip)] = failures_per_pair.get((user, ip), 0) + 1
            success = False
        events.append(
            {
                "timestamp": ts,
                "username": user,
                "ip_address": ip,
                "success": success,
                "user_agent": "Mozilla/5.0",
                "country": "DE",
            }
        )
    for k in range(incidents):
        start = base + span * (k + 1) / (incidents + 1)
        for j in range(6):
            events.append(
                {
                    "timestamp": start + j * 90,
                    "username": f"victim{k}",
                    "ip_address": f"203.0.113.{k + 1}",
                    "success": False,
                    "user_agent": "python-requests/2.31",
                    "country": "RU",
                }
            )
    events.sort(key=lambda e: e["timestamp"])
    return events


def iso(ts: float) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(ts, tz=UTC).isoformat().replace("+00:00", "Z")


def to_ecs(e: dict[str, Any]) -> dict[str, Any]:
    """The same auth event as an Elastic Common Schema document."""
    return {
        "@timestamp": iso(e["timestamp"]),
        "event": {
            "category": ["authentication"],
            "outcome": "success" if e["success"] else "failure",
        },
        "user": {"name": e["username"]},
        "source": {"ip": e["ip_address"], "geo": {"country_iso_code": e.get("country")}},
        "user_agent": {"original": e.get("user_agent")},
    }


def dumps(records: list[dict[str, Any]]) -> list[bytes]:
    return [orjson.dumps(r) for r in records]


async def produce(
    bootstrap: str,
    topic: str,
    values: list[bytes],
    keys: list[bytes | None] | None = None,
    partitions: int = 3,
) -> None:
    """Create ``topic`` and produce ``values`` with pre-built batches."""
    from aiokafka import AIOKafkaProducer

    from streamproc.ops.broker import ensure_topics

    await ensure_topics({"bootstrap_servers": bootstrap}, {topic: partitions})
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=10)
    await producer.start()
    try:
        futures = []
        for i, v in enumerate(values):
            key = keys[i] if keys else None
            futures.append(await producer.send(topic, v, key=key))
        import asyncio

        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def read_records(bootstrap: str, topic: str, n: int, timeout: float = 10.0) -> list[Any]:
    """The records of ``topic`` from its start, until there are ``n`` of them or ``timeout``
    seconds have passed: what a test then asserts about them says what was missing. Read
    without a consumer group, so nothing is committed on the deployment's behalf."""
    import time

    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = time.monotonic() + timeout
        while len(records) < n and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records


async def committed_total(bootstrap: str, group: str, topic: str) -> int:
    """Sum of the committed offsets of ``group`` over the partitions of ``topic``."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        if not parts:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic) or set()
        total = 0
        for p in parts:
            off = await consumer.committed(TopicPartition(topic, p))
            total += off or 0
        return total
    finally:
        await consumer.stop()


def incident_stream(n_incidents: int, base: float = BASE_TS) -> tuple[list[dict], list[dict]]:
    """Each incident: 6 failures 2 minutes apart; the first 3 in part one, the rest in part
    two, so that every incident straddles whatever happens between the parts."""
    first, second = [], []
    for k in range(n_incidents):
        for j in range(6):
            event = {
                "timestamp": base + k + j * 120,
                "username": f"victim{k}",
                "ip_address": f"203.0.113.{k % 250 + 1}",
                "success": False,
            }
            (first if j < 3 else second).append(event)
    first.sort(key=lambda e: e["timestamp"])
    second.sort(key=lambda e: e["timestamp"])
    return first, second


def keys_of(events: list[dict]) -> list[bytes]:
    return [e["username"].encode() for e in events]


def fired_victims(receiver) -> list[str]:
    out = []
    for r in receiver.accepted:
        text = orjson.dumps(r["json"]).decode()
        for word in text.replace('"', " ").replace(",", " ").split():
            if word.startswith("victim"):
                out.append(word.rstrip(".:;)"))
                break
    return out


def split_at(items: list[Any], ends: list[int]) -> list[list[Any]]:
    """``items`` cut into consecutive batches ending at each of ``ends`` (increasing; an end
    not past the one before adds no batch): the batches a property test feeds a detector."""
    out, start = [], 0
    for end in ends:
        if end > start:
            out.append(items[start:end])
        start = end
    return out

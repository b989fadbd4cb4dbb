"""With Kafka, any worker's Alertmanager API lists the alerts of the whole deployment, and a
silence made through it is the deployment's silence: the CLI sees it, deliveries obey it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import pytest

from streamproc.config import parse_config_text
from streamproc.http.alertmanager import AlertmanagerAPI
from streamproc.http.am_shapes import rfc3339
from streamproc.http.listener import Listener
from streamproc.ops.metrics import Metrics
from streamproc.pipeline.runtime import Runtime
from tests.streams import BASE_TS, auth_stream, dumps, produce
from tests.waiting import wait_until

pytestmark = pytest.mark.kafka


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamproc.commands.cli", "silence", "-c", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_a_worker_lists_alerts_another_delivered_and_its_silences_are_shared(
    kafka, receiver, tmp_path: Path, write_config
) -> None:
    topic, group = f"auth-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    stream = auth_stream(2000, 2)
    await produce(
        kafka.bootstrap_servers, topic, dumps(stream), [e["username"].encode() for e in stream]
    )

    def config_of(name: str) -> tuple[Path, object]:
        path = write_config(
            tmp_path / f"{name}.yaml",
            bootstrap=kafka.bootstrap_servers,
            group=group,
            topics=[topic],
            urls=[receiver.url("json")],
            state_dir=tmp_path / name,
        )
        return path, parse_config_text(path.read_text(), file=str(path))

    # worker A judges and delivers both incidents, serves no API, and stops
    _, config_a = config_of("a")
    metrics_a = Metrics(process_metrics=False)
    a = Runtime(config_a, metrics=metrics_a)
    await a.start()
    try:

        async def delivered() -> bool:
            return len(receiver.accepted) >= 2

        await wait_until(delivered, 60, "worker A to deliver both alerts", interval=0.2)

        async def published() -> bool:
            # the table's publishing, as /metrics reports it
            got = metrics_a.value(
                "streamproc_active_alerts_entries_total", {"outcome": "published"}
            )
            return (got or 0) >= 2

        await wait_until(published, 20, "worker A to publish both active alerts", interval=0.2)
        assert metrics_a.value("streamproc_active_alerts_pending") == 0
    finally:
        await a.stop()

    # worker B never saw those alerts: it lists them from the deployment's topic
    path_b, config_b = config_of("b")
    b = Runtime(config_b, serve_alerts=True)
    await b.start()
    api = AlertmanagerAPI(b, config_b)
    listener = Listener("127.0.0.1", 0)
    listener.mount("/api/v2", api.app())
    await listener.start()
    try:
        async with aiohttp.ClientSession(listener.url) as http:

            async def alerts(query: str = "") -> list[dict]:
                async with http.get("/api/v2/alerts" + query) as resp:
                    assert resp.status == 200
                    return await resp.json()

            async def both_listed() -> bool:
                return len(await alerts()) == 2

            await wait_until(both_listed, 20, "worker B to list both alerts", interval=0.2)
            listed = await alerts()
            assert sorted(x["labels"]["username"] for x in listed) == ["victim0", "victim1"]
            assert all(x["labels"]["alertname"] == "brute_force" for x in listed)

            # a silence made through B's API is the deployment's: the CLI reads it...
            body = {
                "matchers": [
                    {"name": "alertname", "value": "brute_force", "isRegex": False, "isEqual": True}
                ],
                "startsAt": rfc3339(time.time()),
                "endsAt": rfc3339(time.time() + 3600),
                "createdBy": "oncall",
                "comment": "pen test",
            }
            async with http.post("/api/v2/silences", json=body) as resp:
                assert resp.status == 200
                sid = (await resp.json())["silenceID"]
            shown = cli(path_b, "query", "-o", "json")
            assert shown.returncode == 0, shown.stderr
            assert [
                (s["id"], s["createdBy"], s["status"]["state"]) for s in json.loads(shown.stdout)
            ] == [(sid, "oncall", "active")]

            # ...and deliveries obey it: a new incident is judged, listed, not delivered
            attack = [
                {
                    "timestamp": BASE_TS + 8 * 3600 + j * 60,
                    "username": "victim9",
                    "ip_address": "203.0.113.99",
                    "success": False,
                    "user_agent": "hydra",
                    "country": "RU",
                }
                for j in range(6)
            ]
            await produce(kafka.bootstrap_servers, topic, dumps(attack), [b"victim9"] * len(attack))

            async def third_listed() -> bool:
                return len(await alerts()) == 3

            await wait_until(third_listed, 60, "the third alert to be listed", interval=0.2)
            new = next(x for x in await alerts() if x["labels"]["username"] == "victim9")
            assert new["status"] == {"state": "suppressed", "silencedBy": [sid], "inhibitedBy": []}
            assert b.notifier.counters["silenced"] >= 1
            await asyncio.sleep(1.0)
            assert len(receiver.accepted) == 2  # the silenced alert was not delivered

            # a silence added with the CLI shows in the API within a fetch
            added = cli(
                path_b, "add", "username=victim0", "--duration", "30m", "--comment", "known"
            )
            assert added.returncode == 0, added.stderr
            cli_id = added.stdout.split()[0]

            async def cli_silence_listed() -> bool:
                async with http.get("/api/v2/silences") as resp:
                    return cli_id in {s["id"] for s in await resp.json()}

            await wait_until(
                cli_silence_listed, 10, "the silence the CLI made to be listed", interval=0.2
            )
            async with http.delete(f"/api/v2/silence/{sid}") as resp:
                assert resp.status == 200
            states = {
                s["id"]: s["status"]["state"]
                for s in json.loads(cli(path_b, "query", "-o", "json", "-e").stdout)
            }
            assert states == {sid: "expired"}
    finally:
        await listener.stop()
        await b.stop()


async def test_active_alerts_the_broker_refused_are_published_once_it_answers() -> None:
    """A broker that stops answering (frozen with SIGSTOP, so each send times out) must not
    cost the other workers a batch: the publisher sends it again, then what came after."""
    import os
    import signal

    from aiokafka import AIOKafkaProducer

    from streamproc.alerts import Alert
    from streamproc.notify.active import KafkaActiveAlerts
    from streamproc.ops.backoff import Backoff
    from streamproc.ops.broker import EmbeddedKafka, ensure_topics

    def alert(n: int) -> Alert:
        fp = f"fp{n:04d}"
        return Alert("brute_force", "high", "firing", {"n": n}, fp, 1.0, f"alert {n}")

    broker = EmbeddedKafka().start()  # its own: frozen below
    config = parse_config_text(
        f"kafka:\n  bootstrap_servers: {broker.bootstrap_servers}\n"
        f"  group_id: g-{uuid.uuid4().hex[:8]}\n"
        "topics:\n  - topic: auth\n    family: auth-logs\n",
        file=None,
    )
    cfg = config.kafka
    await ensure_topics(cfg.client_kwargs(), {cfg.topics.active_alerts: 3})
    producer = AIOKafkaProducer(**cfg.client_kwargs(), request_timeout_ms=1500)
    await producer.start()
    publisher = KafkaActiveAlerts(
        cfg, producer, 3600.0, follow=False, backoff=Backoff(initial=0.2, cap=0.5)
    )
    reader = KafkaActiveAlerts(cfg, None, 3600.0)
    await reader.start()
    try:
        await publisher.record([alert(n) for n in range(3)])

        async def first_listed() -> bool:
            return len(reader.current()) == 3

        await wait_until(first_listed, 20, "the first alerts to be listed", interval=0.1)

        assert broker.proc is not None
        os.kill(broker.proc.pid, signal.SIGSTOP)
        try:
            await publisher.record([alert(n) for n in range(3, 10)])
            await publisher.record([alert(n) for n in range(10, 20)])

            async def refused() -> bool:
                return publisher.failed_sends >= 2

            await wait_until(refused, 30, "sends to the frozen broker to fail", interval=0.1)
        finally:
            os.kill(broker.proc.pid, signal.SIGCONT)

        async def all_listed() -> bool:
            return len(reader.current()) == 20

        async def all_sent() -> bool:
            return publisher.pending == 0

        await wait_until(all_listed, 30, "every alert to be listed", interval=0.1)
        await wait_until(all_sent, 30, "the publisher to have sent everything", interval=0.1)
        assert [e.alert.fingerprint for e in reader.current()] == [f"fp{n:04d}" for n in range(20)]
        assert publisher.dropped == 0 and publisher.published >= 20
    finally:
        await publisher.stop()
        await reader.stop()
        await producer.stop()
        broker.stop()

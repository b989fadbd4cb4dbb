"""More than one deployment on one cluster, more than one worker in a deployment: internal
topics are the deployment's own, and silences and the notification log are shared by all of
its workers. Real Tansu, real workers, real receivers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from streamproc.config import parse_config_text
from streamproc.errors import ConfigError
from streamproc.ops.broker import free_port
from tests.runtimes import running
from tests.streams import (
    auth_stream,
    committed_total,
    dumps,
    fired_victims,
    incident_stream,
    keys_of,
    produce,
)
from tests.waiting import wait_until
from tests.workers import has_committed, start_worker, worker_config

pytestmark = pytest.mark.kafka


async def test_two_deployments_on_one_cluster_each_judge_every_record_with_their_own_state(
    kafka, make_receiver, make_config, tmp_path
) -> None:
    topic = f"auth-{uuid.uuid4().hex[:8]}"
    stream = auth_stream(5000, 3)
    await produce(
        kafka.bootstrap_servers, topic, dumps(stream), [e["username"].encode() for e in stream]
    )

    async def deploy(name: str) -> tuple[str, Any, Any]:
        group = f"{name}-{uuid.uuid4().hex[:8]}"
        receiver = make_receiver()
        config = make_config(
            bootstrap=kafka.bootstrap_servers,
            kafka={"group_id": group},  # no alert_topic: the default names are under test
            topics=[topic],
            urls=[receiver.url()],
            state={"checkpoint_interval": 1},
            state_dir=tmp_path / name,
        )
        async with running(config) as runtime:
            await wait_until(
                lambda: runtime.stats.records_in >= len(stream) and len(receiver.accepted) >= 3,
                40,
                f"{name}: every record and three alerts",
                detail=lambda: runtime.stats,
            )
            await asyncio.sleep(1.0)  # anything extra that was going to arrive
        return group, runtime, receiver

    # one after the other: the second finds the first's topics
    runs = [await deploy("blue"), await deploy("green")]
    for group, runtime, receiver in runs:
        assert runtime.stats.records_in == len(stream), group  # judged, not skipped
        assert runtime.stats.alerts_by_kind.get("brute_force") == 3, group
        assert len(receiver.accepted) == 3, (group, receiver.accepted)  # none of the other's
        assert await committed_total(kafka.bootstrap_servers, group, topic) == len(stream)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
    finally:
        await admin.close()
    for group, _, _ in runs:
        assert {f"{group}.alerts", f"{group}.state.{topic}"} <= existing


# -- one deployment, several workers: silences and the notification log are shared ----------


def _silence(config: Path, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "streamproc.commands.cli", "silence", "-c", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


async def test_a_silence_added_with_the_cli_mutes_matching_alerts_in_every_worker(
    kafka, receiver, tmp_path
) -> None:
    topic, group = f"auth-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    part1, part2 = incident_stream(16)
    stream = sorted(part1 + part2, key=lambda e: e["timestamp"])
    config = worker_config(
        tmp_path / "c.yaml",
        kafka.bootstrap_servers,
        topic,
        group,
        receiver.url(),
        tmp_path / "state",
    )
    await produce(kafka.bootstrap_servers, topic, [], partitions=4)
    # one silence before the workers start, one while they run
    _silence(config, "add", "username=~victim[0-3]", "--duration", "1h")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    log = tmp_path / "sup.log"
    with open(log, "ab") as out:
        sup = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamproc.commands.cli",
                "run",
                "-c",
                str(config),
                "--workers",
                "2",
                "--log-level",
                "INFO",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        await wait_until(
            lambda: log.read_text().count("partitions assigned") >= 2,
            60,
            "both workers to be assigned partitions",
        )
        added = _silence(config, "add", "username=~victim[4-7]", "--duration", "1h").split()[0]
        assert added in _silence(config, "list")
        # each worker says when it applies a silence; give them a moment to read it
        with contextlib.suppress(AssertionError):
            await wait_until(
                lambda: log.read_text().count(f"silence {added} active") >= 2,
                20,
                "both workers to read the silence",
            )
        await produce(kafka.bootstrap_servers, topic, dumps(stream), keys_of(stream), partitions=4)
        await wait_until(
            lambda: has_committed(kafka.bootstrap_servers, group, topic, len(stream)),
            90,
            "every record committed",
        )
        await wait_until(lambda: len(receiver.accepted) >= 8, 30, "the 8 unsilenced alerts")
        await asyncio.sleep(2)
    finally:
        sup.send_signal(signal.SIGTERM)
        try:
            sup.wait(20)
        finally:
            if sup.poll() is None:
                sup.kill()
    text = log.read_text()
    assert (tmp_path / "state" / "worker-0").exists() and (tmp_path / "state" / "worker-1").exists()
    assert sorted(fired_victims(receiver)) == sorted(f"victim{k}" for k in range(8, 16)), text[
        -3000:
    ]


def _alerts_raised(port: int) -> float:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return 0.0
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("streamproc_alerts_total{")
    )


async def test_alerts_a_killed_worker_sent_are_not_sent_again_by_the_worker_that_re_reads_them(
    kafka, receiver, tmp_path
) -> None:
    topic, group = f"auth-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    part1, part2 = incident_stream(30)
    stream = sorted(part1 + part2, key=lambda e: e["timestamp"])
    # no checkpoint before the kill: the survivor judges the killed worker's records again
    # and appends the same alerts to the alert log once more
    # two machines: each worker with its own state directory
    configs = [
        worker_config(
            tmp_path / f"{m}.yaml",
            kafka.bootstrap_servers,
            topic,
            group,
            receiver.url(),
            tmp_path / f"state-{m}",
            interval=600,
        )
        for m in ("a", "b")
    ]
    await produce(kafka.bootstrap_servers, topic, [], partitions=4)
    port = free_port()
    a = start_worker(configs[0], tmp_path / "a.log")
    b = start_worker(configs[1], tmp_path / "b.log", "--metrics-port", str(port))
    try:
        await wait_until(
            lambda: (
                "partitions assigned" in (tmp_path / "a.log").read_text()
                and "partitions assigned" in (tmp_path / "b.log").read_text()
            ),
            60,
            "both workers to be assigned partitions",
        )
        await asyncio.sleep(3)  # the alert log's group settles too
        await produce(kafka.bootstrap_servers, topic, dumps(stream), keys_of(stream), partitions=4)
        await wait_until(lambda: len(receiver.accepted) >= 30, 90, "30 alerts")
        await asyncio.sleep(1)  # past the crash window of the last delivery
        a.kill()  # SIGKILL: no final checkpoint, no goodbye to either group
        a.wait(10)
        # the survivor takes the killed worker's partitions and judges them again
        await wait_until(
            lambda: _alerts_raised(port) >= 30, 90, "the survivor to judge every incident"
        )
    finally:
        b.send_signal(signal.SIGTERM)  # drains what it read from the alert log, then exits
        try:
            b.wait(30)
        finally:
            for p in (a, b):
                if p.poll() is None:
                    p.kill()
    assert await committed_total(kafka.bootstrap_servers, group, topic) == len(stream)
    victims = fired_victims(receiver)
    assert sorted(victims) == sorted(f"victim{k}" for k in range(30)), (
        tmp_path / "b.log"
    ).read_text()[-3000:]


def test_internal_topics_are_named_after_the_application_id_which_defaults_to_the_group_id() -> (
    None
):
    kafka = parse_config_text("kafka: {bootstrap_servers: 'x:1', group_id: team-a}").kafka
    assert kafka is not None
    assert (kafka.alert_topic, kafka.alert_dlq_topic) == ("team-a.alerts", "team-a.alerts.dlq")
    assert kafka.topics.state("auth-logs") == "team-a.state.auth-logs"
    pinned = parse_config_text(
        "kafka: {bootstrap_servers: 'x:1', group_id: team-a, "
        "application_id: streamproc, alert_topic: mine}"
    ).kafka
    assert pinned is not None
    assert (pinned.alert_topic, pinned.topics.silences) == ("mine", "streamproc.silences")
    with pytest.raises(ConfigError) as err:
        parse_config_text(
            "kafka:\n  bootstrap_servers: 'x:1'\n  group_id: 'team a'\n", file="c.yaml"
        )
    assert err.value.line == 3 and "application_id" in str(err.value.hint)


async def test_the_silence_table_reads_the_latest_version_of_each_silence_from_every_version(
    kafka, tmp_path
) -> None:
    from aiokafka import AIOKafkaProducer

    from streamproc.notify.silences import SilenceTable

    group = f"g-{uuid.uuid4().hex[:8]}"
    config = worker_config(
        tmp_path / "c.yaml",
        kafka.bootstrap_servers,
        "t",
        group,
        "json://127.0.0.1:9/",
        tmp_path / "state",
    )
    expired = _silence(config, "add", "kind=brute_force", "--duration", "1h").split()[0]
    _silence(config, "expire", expired[:6])
    kept = _silence(config, "add", "username=alice", "--duration", "1h").split()[0]
    dropped = _silence(config, "add", "username=bob", "--duration", "1h").split()[0]
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    await producer.start()
    try:  # a tombstone removes a silence; a foreign record is skipped
        await producer.send_and_wait(f"{group}.silences", None, key=dropped.encode())
        await producer.send_and_wait(f"{group}.silences", b"not a silence", key=b"x")
    finally:
        await producer.stop()
    listed = _silence(config, "list")
    assert kept in listed and expired not in listed and dropped not in listed
    table = SilenceTable(parse_config_text(config.read_text()).kafka)
    await table.start()
    try:
        assert [s.id for s in table.active()] == [kept]
        assert {s.id for s in table.all()} == {expired, kept}  # ended: kept, ignored
    finally:
        await table.stop()


async def test_the_shared_notification_log_applies_other_workers_records_and_skips_forged_ones(
    kafka, tmp_path
) -> None:
    import time

    import orjson
    from aiokafka import AIOKafkaProducer

    from streamproc.notify.dedup import Dedup
    from streamproc.notify.sharedlog import SharedNotificationLog
    from streamproc.notify.store import open_db

    group = f"g-{uuid.uuid4().hex[:8]}"
    cfg = parse_config_text(
        f"kafka: {{bootstrap_servers: '{kafka.bootstrap_servers}', group_id: {group}}}"
    ).kafka
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    await producer.start()
    dbs = [open_db(tmp_path / m) for m in ("a", "b")]
    logs = [SharedNotificationLog(cfg, producer, retention=86400.0) for _ in dbs]
    try:
        for log, db in zip(logs, dbs, strict=True):
            await log.start(db)
        now = time.time()
        # worker a records a delivery and publishes it, as Notifier._commit_sent does
        Dedup(dbs[0], repeat_interval=3600).mark_many([("ch1", "fp-a", "firing", "sent")], now)
        logs[0].publish([("ch1", "fp-a", "firing", "sent")], now)
        forged = [
            b"not json",
            orjson.dumps(["ch1", "fp-x", "firing", "sent", 253402300799.0]),
            orjson.dumps(["ch1", "fp-y", "firing", "queued", now]),
        ]
        for value in forged:
            await producer.send_and_wait(cfg.topics.notifications, value, key=b"x")
        await wait_until(
            lambda: logs[0].published >= 1, 30, "the broker to acknowledge the delivery record"
        )
        await logs[1].caught_up()
        dedup = Dedup(dbs[1], repeat_interval=3600)
        assert dedup.known(
            [("ch1", "fp-a", "firing"), ("ch1", "fp-x", "firing"), ("ch1", "fp-y", "firing")],
            time.time(),
        ) == {("ch1", "fp-a", "firing")}
    finally:
        for log in logs:
            await log.stop()
        for db in dbs:
            db.close()
        await producer.stop()

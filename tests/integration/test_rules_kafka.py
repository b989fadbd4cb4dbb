"""Rules on Kafka: the alerts a Sigma detection, a Sigma correlation and a rule file raise
through the embedded broker are those replay raises from the same records, and each rule's
firings are counted by rule id."""

from __future__ import annotations

import asyncio
import textwrap
import uuid
from pathlib import Path

import pytest

from streamproc.alerts import Alert
from streamproc.commands.replay import ReplayInput, replay_records
from streamproc.config import parse_config_text
from streamproc.ops.metrics import Metrics
from tests.api_records import req
from tests.runtimes import running
from tests.streams import produce, read_records
from tests.waiting import wait_until

pytestmark = pytest.mark.kafka

SQLMAP = """
    title: SQLMap user agent
    id: 3e6c8f1a-0000-4000-8000-00000000a001
    level: high
    logsource: {category: webserver}
    detection:
      sel: {cs-user-agent|startswith: sqlmap/}
      condition: sel
"""
ERRORS = """
    title: Server error
    name: server_error
    logsource: {category: webserver}
    detection:
      sel: {sc-status|gte: 500}
      condition: sel
"""
BURST = """
    title: Server error burst
    id: 3e6c8f1a-0000-4000-8000-00000000a002
    name: error_burst
    level: critical
    correlation:
      type: event_count
      rules: [server_error]
      group-by: [c-ip]
      timespan: 1m
      condition: {gte: 3}
"""
DELETES = """
    name: many-deletes
    family: api-access-logs
    type: frequency
    filter: {method: DELETE}
    key: [ip_address]
    window: 2m
    threshold: 4
"""


def records() -> list[bytes]:
    out = []
    for i in range(300):
        t = i * 2.0
        if i in (10, 150, 290):
            out.append(req(t, ip=f"192.0.2.{i % 7}", user_agent="sqlmap/1.7.2"))
        elif 100 <= i < 104:
            out.append(req(t, ip="198.51.100.1", status=503))
        elif 200 <= i < 205:
            out.append(req(t, ip="198.51.100.2", method="DELETE"))
        else:
            out.append(req(t, ip=f"203.0.113.{i % 50}"))
    return out


def config_text(tmp_path: Path, extra: str) -> str:
    (tmp_path / "sigma").mkdir()
    for name, rule in (("sqlmap.yml", SQLMAP), ("errors.yml", ERRORS), ("burst.yml", BURST)):
        (tmp_path / "sigma" / name).write_text(textwrap.dedent(rule))
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "deletes.yaml").write_text(textwrap.dedent(DELETES))
    return f"sigma: [{tmp_path}/sigma]\nrules: [{tmp_path}/rules]\n" + extra


def identity(a: Alert) -> tuple[object, ...]:
    return (
        a.kind,
        a.fingerprint,
        a.event_time,
        a.title,
        tuple(sorted(a.key.items())),
        a.severity,
        a.status,
    )


async def test_rule_alerts_on_kafka_are_those_of_replay(kafka, receiver, tmp_path) -> None:

    values = records()
    (tmp_path / "r").mkdir()
    replayed = replay_records(
        parse_config_text(config_text(tmp_path / "r", "")),
        [ReplayInput("api-access-logs", lines=values)],
    ).alerts
    expected = sorted(identity(a) for a in replayed)
    assert sorted({a.kind for a in replayed}) == [
        "rule:many-deletes",
        "sigma:3e6c8f1a-0000-4000-8000-00000000a001",
        "sigma:error_burst",
    ]
    assert len(expected) == 5  # three sqlmap requests, one burst, one delete run

    topic = f"api-{uuid.uuid4().hex[:8]}"
    group = f"g-{uuid.uuid4().hex[:8]}"
    await produce(kafka.bootstrap_servers, topic, values, partitions=1)
    (tmp_path / "k").mkdir()
    config = parse_config_text(
        config_text(
            tmp_path / "k",
            f"""
kafka:
  bootstrap_servers: {kafka.bootstrap_servers}
  group_id: {group}
  alert_topic: {group}.alerts
topics:
  - topic: {topic}
    family: api-access-logs
    keyed_by: ip_address
notify:
  urls: ["{receiver.url("json")}"]
  group_wait: 0s
  group_by: [fingerprint]
state_dir: {tmp_path / "state"}
""",
        )
    )
    metrics = Metrics(process_metrics=False)
    async with running(config, metrics=metrics) as runtime:
        await wait_until(
            lambda: (
                runtime.stats.records_in >= len(values)
                and sum(runtime.stats.alerts_by_kind.values()) >= len(expected)
            ),
            60,
            "every record and every expected alert",
            detail=lambda: runtime.stats,
        )
        await asyncio.sleep(0.5)

    alert_log = await read_records(kafka.bootstrap_servers, f"{group}.alerts", len(expected))
    got = [Alert.from_json(r.value) for r in alert_log]
    assert sorted(identity(a) for a in got) == expected
    assert (
        metrics.value(
            "streamproc_rule_firings_total",
            {"rule": "3e6c8f1a-0000-4000-8000-00000000a001", "source": "sigma"},
        )
        == 3
    )
    assert (
        metrics.value(
            "streamproc_rule_firings_total",
            {"rule": "3e6c8f1a-0000-4000-8000-00000000a002", "source": "sigma"},
        )
        == 1
    )
    assert (
        metrics.value("streamproc_rule_firings_total", {"rule": "many-deletes", "source": "rules"})
        == 1
    )

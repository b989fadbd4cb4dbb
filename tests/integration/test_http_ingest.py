"""HTTP ingest (sources/http.py): events and CI/CD webhooks, against a real aiohttp server,
the real Tansu broker (records produced and read back) and the real Judge."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaProducer

from streamproc.config import parse_config_text
from streamproc.errors import ConfigError
from streamproc.http.encoding import SERVER_OPTIONS
from streamproc.ops.broker import ensure_topics
from streamproc.ops.metrics import Metrics
from streamproc.pipeline.runtime import Judge
from streamproc.sources import webhooks
from streamproc.sources.http import (
    API_PREFIX,
    Ingest,
    JudgeTarget,
    KafkaTarget,
    ingest_app,
    split_records,
)
from streamproc.sources.ingest import DeliveryDedup, TokenBucket
from streamproc.storage.alertlog import SqliteAlertLog
from streamproc.storage.dlq import FileDeadLetters, KafkaDeadLetters
from tests.paths import REPO, SAMPLES
from tests.streams import read_records

SAMPLES = SAMPLES / "webhooks"
SECRET = "s3cret-for-tests"


def mounted(ingest: Ingest) -> web.Application:
    """The endpoints as the runner serves them: mounted at /api/v1 of a root application."""
    root = web.Application()
    root.add_subapp(API_PREFIX, ingest_app(ingest))
    return root


class _Served(TestServer):
    # (TestServer keeps no options of its own for the server: they go to its runner here)
    async def _make_runner(self, **kwargs: Any) -> web.AppRunner:
        return web.AppRunner(self.app, **kwargs, **SERVER_OPTIONS)


def served(ingest: Ingest) -> TestServer:
    """A test server of the endpoints, set as the listener sets its server."""
    return _Served(mounted(ingest))


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def github_headers(
    body: bytes, event: str = "workflow_run", delivery: str | None = None, secret: str = SECRET
) -> dict[str, str]:
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": "sha256="
        + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
        "Content-Type": "application/json",
    }


# -- provider payloads -> cicd-events records ---------------------------------------------------


def test_github_failed_workflow_run_is_a_failing_pipeline_of_repo_and_workflow() -> None:
    out = webhooks.github(
        {"X-GitHub-Event": "workflow_run", "X-GitHub-Delivery": "d-1"},
        json.loads(sample("github-workflow_run-failure.json")),
    )
    assert isinstance(out, webhooks.Mapped)
    assert out.delivery == "d-1"
    assert out.record == {
        "timestamp": "2026-11-29T10:04:41Z",
        "type": "pipeline",
        "status": "failure",
        "project": "acme/payments-api/CI",
        "branch": "main",
        "commit": "9f2c1e0d4b7a6c5e8f1a2b3c4d5e6f708192a3b4",
        "author": "grace-kim",
        "duration": 399.0,
        "build_url": "https://github.com/acme/payments-api/actions/runs/11223344551",
        "description": "CI #812 failure: Fix retry budget in payment client",
    }


def test_github_run_in_progress_and_other_events_are_ignored_with_a_reason() -> None:
    running = webhooks.github(
        {"X-GitHub-Event": "workflow_run"},
        json.loads(sample("github-workflow_run-in_progress.json")),
    )
    assert isinstance(running, webhooks.Ignored) and running.reason == "in_progress"
    ping = webhooks.github({"X-GitHub-Event": "ping"}, {"zen": "Keep it simple."})
    assert isinstance(ping, webhooks.Ignored) and ping.reason == "event_type"


def test_github_deployment_status_success_is_a_deployment_to_its_environment() -> None:
    out = webhooks.github(
        {"X-GitHub-Event": "deployment_status"},
        json.loads(sample("github-deployment_status-success.json")),
    )
    assert isinstance(out, webhooks.Mapped)
    assert out.record["type"] == "deployment"
    assert out.record["service"] == "acme/payments-api"
    assert out.record["environment"] == "production"
    assert out.record["version"] == "v2.14.0"
    assert out.record["deployer"] == "deploy-bot"
    assert out.record["status"] == "success"


def test_gitlab_failed_pipeline_hook_reads_gitlab_times_as_utc() -> None:
    out = webhooks.gitlab(
        {"X-Gitlab-Event": "Pipeline Hook", "X-Gitlab-Event-UUID": "u-1"},
        json.loads(sample("gitlab-pipeline-failed.json")),
    )
    assert isinstance(out, webhooks.Mapped) and out.delivery == "u-1"
    r = out.record
    assert (r["timestamp"], r["status"], r["project"], r["branch"], r["author"], r["duration"]) == (
        "2026-11-29T09:01:33Z",
        "failure",
        "platform/search",
        "main",
        "sybil.patel",
        549,
    )


def test_gitlab_deployment_hook_converts_its_offset_time() -> None:
    out = webhooks.gitlab(
        {"X-Gitlab-Event": "Deployment Hook"}, json.loads(sample("gitlab-deployment-success.json"))
    )
    assert isinstance(out, webhooks.Mapped)
    assert out.record["timestamp"] == "2026-11-29T11:50:00Z"
    assert (out.record["service"], out.record["environment"], out.record["version"]) == (
        "platform/search",
        "staging",
        "1.0.0",
    )


def test_jenkins_build_is_judged_once_when_finalized() -> None:
    started = webhooks.jenkins({}, json.loads(sample("jenkins-started.json")))
    assert isinstance(started, webhooks.Ignored) and started.reason == "phase"
    out = webhooks.jenkins({}, json.loads(sample("jenkins-finalized-failure.json")))
    assert isinstance(out, webhooks.Mapped)
    assert out.delivery == "https://jenkins.example.com/job/checkout-web/128/#128#FINALIZED"
    assert (
        out.record["status"],
        out.record["project"],
        out.record["branch"],
        out.record["duration"],
    ) == ("failure", "checkout-web", "main", 195.7)
    assert out.record["timestamp"] == "2026-11-29T08:03:15.700Z"  # start + duration


@pytest.mark.parametrize(
    ("given", "read"),
    [
        (1795939395700, "2026-11-29T08:03:15.700Z"),  # Jenkins: epoch milliseconds
        (1795939395001, "2026-11-29T08:03:15.001Z"),
        (1795939200000, "2026-11-29T08:00:00Z"),  # no fraction: none written
        (1795939395999.6, "2026-11-29T08:03:16Z"),  # rounds up into the next second
        (1795939395.25, "2026-11-29T08:03:15.250Z"),  # epoch seconds
        ("2026-11-29T10:04:41.123456+02:00", "2026-11-29T08:04:41.123Z"),
        ("2026-11-29 10:04:41 UTC", "2026-11-29T10:04:41Z"),  # GitLab
        ("2021-04-28 21:50:00 +0200", "2021-04-28T19:50:00Z"),
        (float("nan"), None),
        (1e20, None),
        ("yesterday", None),
        ("", None),
    ],
)
def test_provider_times_keep_their_milliseconds(given: object, read: str | None) -> None:
    assert webhooks.iso(given) == read


def test_signatures_are_checked_per_provider() -> None:
    body = b'{"a": 1}'
    good = github_headers(body)
    assert webhooks.verify("github", SECRET, good, body, {})
    assert not webhooks.verify("github", SECRET, good, body + b" ", {})
    assert not webhooks.verify("github", "other", good, body, {})
    assert not webhooks.verify("github", SECRET, {}, body, {})
    assert webhooks.verify("gitlab", SECRET, {"X-Gitlab-Token": SECRET}, body, {})
    assert not webhooks.verify("gitlab", SECRET, {"X-Gitlab-Token": "nope"}, body, {})
    assert webhooks.verify("jenkins", SECRET, {}, body, {"token": SECRET})
    assert not webhooks.verify("jenkins", SECRET, {}, body, {})


# -- bodies, limits, dedup ------------------------------------------------------------------------


def test_a_body_is_split_by_content_type_or_sniffed() -> None:
    assert split_records(b'{"a": 1}', "application/json") == [b'{"a": 1}']
    assert split_records(b'[{"a":1}, {"b":2}]', "application/json") == [b'{"a":1}', b'{"b":2}']
    # each element's own bytes: a repeated key stays visible to the decoder
    assert split_records(b' [ {"a":1,"a":2} ,\n{"b" : "\\u00e9,]"}, 3 ] ', "") == [
        b'{"a":1,"a":2}',
        b'{"b" : "\\u00e9,]"}',
        b"3",
    ]
    assert split_records('["é", []]'.encode(), "application/json") == ['"é"'.encode(), b"[]"]
    assert split_records(b"[]", "application/json") == []
    deep = b"[" * 1001 + b"]" * 1001  # orjson reads it; the element split cannot
    assert split_records(deep, "application/json") == [deep]
    assert split_records(b'{"a":1}\n\n{"b":2}\r\n', "application/x-ndjson") == [
        b'{"a":1}',
        b'{"b":2}',
    ]
    assert split_records(b'{"a":1}\n{"b":2}', "") == [b'{"a":1}', b'{"b":2}']
    pretty = b'{\n  "a": 1\n}'
    assert split_records(pretty, "") == [pretty]
    assert split_records(b"[not json", "application/json") == [b"[not json"]


def test_token_bucket_allows_a_burst_then_says_how_long_to_wait() -> None:
    bucket = TokenBucket(rate=2.0, burst=3.0)
    assert [bucket.take("a", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take("a", now=0.0) == pytest.approx(0.5)
    assert bucket.take("b", now=0.0) == 0.0  # per client
    assert bucket.take("a", now=0.5) == 0.0  # refilled


def test_delivery_dedup_survives_a_restart_and_keeps_its_bounds(tmp_path) -> None:
    path = tmp_path / "deliveries.sqlite3"
    dedup = DeliveryDedup(path, max_entries=3, ttl=100.0)
    assert dedup.claim("a") and not dedup.claim("a")  # pending: a concurrent duplicate
    dedup.commit("a")
    assert not dedup.claim("a")
    assert dedup.claim("b")
    dedup.release("b")  # failed: the provider's retry is judged
    assert dedup.claim("b")
    dedup.close()
    again = DeliveryDedup(path, max_entries=3, ttl=100.0)
    assert not again.claim("a")
    for key in "cdef":
        assert again.claim(key)
        again.commit(key)
    assert len(again) == 3 and again.claim("a")  # the oldest went first
    assert not again.claim("f")
    assert again.claim("f", now=time.time() + 101)  # past its ttl
    again.close()


# -- config ---------------------------------------------------------------------------------------


def _config(tmp_path, ingest: str, topics: str | None = None, kafka: str | None = None) -> str:
    head = (
        f"kafka: {{bootstrap_servers: '{kafka}'}}\n"
        if kafka
        else "mqtt: {host: 127.0.0.1, port: 1883}\n"
    )
    return (
        head
        + f"state_dir: {tmp_path}/state\n"
        + (
            topics
            or "topics:\n  - {name: cicd-events, family: cicd-events, source: mqtt,\n"
            "     mqtt_topic: ci/#}\n"
        )
        + ingest
    )


def test_ingest_config_reads_secrets_limits_and_dedup_bounds(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GH_SECRET", SECRET)
    config = parse_config_text(
        _config(
            tmp_path,
            (
                "ingest:\n  rate_limit: {per_second: 5, burst: 10}\n"
                "  webhooks:\n    dedup: {max_entries: 50, ttl: 600}\n"
                "    github: {secret: ${GH_SECRET}}\n"
            ),
        )
    )
    ingest = config.ingest
    assert ingest is not None and (ingest.rate, ingest.burst) == (5.0, 10.0)
    assert ingest.webhooks.secrets == {"github": SECRET}
    assert (ingest.webhooks.dedup_entries, ingest.webhooks.dedup_ttl) == (50, 600.0)
    assert SECRET not in repr(ingest)


@pytest.mark.parametrize(
    "ingest, message",
    [
        ("ingest:\n  webhooks:\n    github: {secret: ''}\n", "ingest.webhooks.github.secret"),
        ("ingest:\n  webhooks:\n    bitbucket: {secret: x}\n", "unknown key 'bitbucket'"),
        ("ingest:\n  rate_limit: {per_second: -1}\n", "ingest.rate_limit.per_second"),
        (
            "ingest:\n  webhooks:\n    binding: nope\n    gitlab: {secret: x}\n",
            "no topic binding named 'nope'",
        ),
    ],
)
def test_ingest_config_errors_name_the_setting_and_line(tmp_path, ingest, message) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config_text(_config(tmp_path, ingest), file="streamproc.yaml")
    assert message in str(err.value)
    assert "streamproc.yaml:" in str(err.value)


def test_webhooks_need_a_cicd_binding_in_contract_field_names(tmp_path) -> None:
    topics = (
        "topics:\n  - {family: cicd-events, source: mqtt, mqtt_topic: ci/#,\n"
        "     fields: {timestamp: ts}}\n"
    )
    with pytest.raises(ConfigError, match="maps fields"):
        parse_config_text(
            _config(tmp_path, "ingest:\n  webhooks:\n    gitlab: {secret: x}\n", topics)
        )


# -- the endpoints, judged at once (an MQTT binding) --------------------------------------------


class Direct:
    """An Ingest judging through a real Judge into a real alert log and dead-letter file."""

    def __init__(self, tmp_path, ingest_yaml: str = "") -> None:
        self.config = parse_config_text(
            _config(
                tmp_path,
                ingest_yaml
                or (
                    f"ingest:\n  rate_limit: {{per_second: 1000, burst: 1000}}\n"
                    f"  webhooks:\n    github: {{secret: {SECRET}}}\n"
                    f"    gitlab: {{secret: {SECRET}}}\n    jenkins: {{secret: {SECRET}}}\n"
                ),
            )
        )
        self.metrics = Metrics(process_metrics=False)
        # no clock: the samples keep their recorded times whatever the day (no "future")
        self.judge = Judge(self.config, self.metrics)
        self.alert_log = SqliteAlertLog(tmp_path / "alerts.sqlite3")
        self.dead_path = tmp_path / "dead.jsonl"
        self.dead = FileDeadLetters(self.dead_path)
        self.ingest = Ingest(
            self.config.ingest,
            self.config.bindings,
            [JudgeTarget(self.judge, self.alert_log.append, self.dead.write)],
            metrics=self.metrics,
            dedup=DeliveryDedup(tmp_path / "deliveries.sqlite3"),
        )

    async def alerts(self) -> list:
        await self.alert_log.start()
        alerts, _ = await self.alert_log.read(100, 0.1)
        return alerts

    def dead_letters(self) -> list[dict]:
        if not self.dead_path.exists():
            return []
        return [orjson.loads(line) for line in self.dead_path.read_bytes().splitlines()]

    def value(self, name: str, **labels: str) -> float:
        return self.metrics.value(name, labels) or 0.0


async def test_github_failure_fires_pipeline_failed_once_and_a_replay_is_not_judged(
    tmp_path,
) -> None:
    d = Direct(tmp_path)
    body = sample("github-workflow_run-failure.json")
    headers = github_headers(body, delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    async with TestClient(served(d.ingest)) as client:
        first = await client.post("/api/v1/webhooks/github", data=body, headers=headers)
        assert first.status == 200, await first.text()
        assert (await first.json()) == {"accepted": 1, "rejected": 0}
        again = await client.post("/api/v1/webhooks/github", data=body, headers=headers)
        assert again.status == 200
        assert (await again.json())["duplicate"] is True
    alerts = await d.alerts()
    assert [(a.kind, a.severity, a.key["project"]) for a in alerts] == [
        ("pipeline_failed", "high", "acme/payments-api/CI")
    ]
    assert d.judge.stats.events == 1
    endpoint = "webhooks/github"
    assert d.value("streamproc_ingest_records_total", endpoint=endpoint, outcome="accepted") == 1
    assert d.value("streamproc_ingest_records_total", endpoint=endpoint, outcome="duplicate") == 1


async def test_a_replay_after_a_restart_is_still_recognised(tmp_path) -> None:
    body = sample("github-workflow_run-failure.json")
    headers = github_headers(body, delivery="same-delivery")
    first = Direct(tmp_path)
    async with TestClient(served(first.ingest)) as client:
        assert (
            await client.post("/api/v1/webhooks/github", data=body, headers=headers)
        ).status == 200
    first.ingest.close()
    second = Direct(tmp_path)
    async with TestClient(served(second.ingest)) as client:
        answer = await client.post("/api/v1/webhooks/github", data=body, headers=headers)
        assert (await answer.json())["duplicate"] is True
    assert second.judge.stats.events == 0


async def test_bad_or_missing_signature_is_401_counted_and_never_judged(tmp_path) -> None:
    d = Direct(tmp_path)
    body = sample("github-workflow_run-failure.json")
    async with TestClient(served(d.ingest)) as client:
        forged = await client.post(
            "/api/v1/webhooks/github", data=body, headers=github_headers(body, secret="wrong")
        )
        assert forged.status == 401
        assert SECRET not in await forged.text()
        bare = await client.post(
            "/api/v1/webhooks/github", data=body, headers={"X-GitHub-Event": "workflow_run"}
        )
        assert bare.status == 401
        gitlab = await client.post(
            "/api/v1/webhooks/gitlab",
            data=body,
            headers={"X-Gitlab-Event": "Pipeline Hook", "X-Gitlab-Token": "guess"},
        )
        assert gitlab.status == 401
    assert d.judge.stats.events == 0
    assert (
        d.value(
            "streamproc_ingest_refused_total", endpoint="webhooks/github", reason="unauthorized"
        )
        == 2
    )
    assert (
        d.value(
            "streamproc_ingest_refused_total", endpoint="webhooks/gitlab", reason="unauthorized"
        )
        == 1
    )


async def test_events_of_other_types_are_202_ignored_with_a_reason(tmp_path) -> None:
    d = Direct(tmp_path)
    body = b'{"zen": "Design for failure.", "hook_id": 1}'
    async with TestClient(served(d.ingest)) as client:
        answer = await client.post(
            "/api/v1/webhooks/github", data=body, headers=github_headers(body, event="ping")
        )
        assert answer.status == 202
        assert (await answer.json())["reason"] == "event_type"
        started = sample("jenkins-started.json")
        answer = await client.post(f"/api/v1/webhooks/jenkins?token={SECRET}", data=started)
        assert answer.status == 202
    assert d.value("streamproc_webhooks_ignored_total", provider="github", reason="event_type") == 1
    assert d.value("streamproc_webhooks_ignored_total", provider="jenkins", reason="phase") == 1


async def test_gitlab_and_jenkins_failures_fire_pipeline_failed(tmp_path) -> None:
    d = Direct(tmp_path)
    async with TestClient(served(d.ingest)) as client:
        answer = await client.post(
            "/api/v1/webhooks/gitlab",
            data=sample("gitlab-pipeline-failed.json"),
            headers={
                "X-Gitlab-Event": "Pipeline Hook",
                "X-Gitlab-Token": SECRET,
                "X-Gitlab-Event-UUID": "u-1",
            },
        )
        assert answer.status == 200, await answer.text()
        answer = await client.post(
            "/api/v1/webhooks/jenkins",
            data=sample("jenkins-finalized-failure.json"),
            headers={"X-Streamproc-Token": SECRET},
        )
        assert answer.status == 200, await answer.text()
        answer = await client.post(
            "/api/v1/webhooks/gitlab",
            data=sample("gitlab-deployment-success.json"),
            headers={"X-Gitlab-Event": "Deployment Hook", "X-Gitlab-Token": SECRET},
        )
        assert answer.status == 200, await answer.text()
    kinds = sorted((a.kind, a.key.get("project") or a.key.get("service")) for a in await d.alerts())
    assert kinds == [
        ("deployment", "platform/search"),
        ("pipeline_failed", "checkout-web"),
        ("pipeline_failed", "platform/search"),
    ]


async def test_a_batch_with_bad_records_is_207_with_each_reason_and_dead_letters(tmp_path) -> None:
    d = Direct(tmp_path)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    good = {
        "timestamp": now,
        "type": "pipeline",
        "status": "failure",
        "project": "api",
        "branch": "main",
    }
    lines = [
        orjson.dumps(good),
        b'{"type": "pipeline", "status": "failure"}',
        b"{not json",
        orjson.dumps({**good, "type": "release"}),
    ]
    async with TestClient(served(d.ingest)) as client:
        answer = await client.post(
            "/api/v1/events/cicd-events",
            data=b"\n".join(lines),
            headers={"Content-Type": "application/x-ndjson"},
        )
        assert answer.status == 207
        body = await answer.json()
    assert body["accepted"] == 1 and body["rejected"] == 3
    assert [(e["index"], e["reason"]) for e in body["errors"]] == [
        (1, "missing_field"),
        (2, "not_json"),
        (3, "invalid_value"),
    ]
    dead = d.dead_letters()
    assert sorted(x["reason"] for x in dead) == ["invalid_value", "missing_field", "not_json"]
    assert all("HTTP ingest: record" in x["detail"] for x in dead)
    assert [a.kind for a in await d.alerts()] == ["pipeline_failed"]
    assert (
        d.value(
            "streamproc_ingest_records_total", endpoint="events/cicd-events", outcome="rejected"
        )
        == 3
    )


async def test_a_key_repeated_in_one_element_of_an_array_is_a_duplicate_field(tmp_path) -> None:
    d = Direct(tmp_path)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    good = orjson.dumps(
        {
            "timestamp": now,
            "type": "pipeline",
            "status": "success",
            "project": "api",
            "branch": "main",
        }
    )
    twice = good[:-1] + b',"status":"failure"}'  # the last value would win a re-encoding
    async with TestClient(served(d.ingest)) as client:
        answer = await client.post(
            "/api/v1/events/cicd-events",
            data=b"[" + good + b", " + twice + b"]",
            headers={"Content-Type": "application/json"},
        )
        assert answer.status == 207
        body = await answer.json()
    assert [(e["index"], e["reason"]) for e in body["errors"]] == [(1, "duplicate_field")]


async def test_none_accepted_is_400_unknown_binding_404_and_an_empty_body_400(tmp_path) -> None:
    d = Direct(tmp_path)
    async with TestClient(served(d.ingest)) as client:
        answer = await client.post(
            "/api/v1/events/cicd-events",
            data=b'[{"type": "x"}]',
            headers={"Content-Type": "application/json"},
        )
        assert answer.status == 400
        assert (await answer.json())["errors"][0]["index"] == 0
        answer = await client.post("/api/v1/events/nope", data=b"{}")
        assert answer.status == 404
        assert (await answer.json())["bindings"] == ["cicd-events"]
        answer = await client.post("/api/v1/events/cicd-events", data=b"\n\n")
        assert answer.status == 400


async def test_a_client_over_its_rate_gets_429_with_retry_after(tmp_path) -> None:
    d = Direct(tmp_path, "ingest:\n  rate_limit: {per_second: 0.5, burst: 2}\n")
    async with TestClient(served(d.ingest)) as client:
        codes = [(await client.post("/api/v1/events/nope", data=b"{}")).status for _ in range(2)]
        assert codes == [404, 404]
        limited = await client.post("/api/v1/events/nope", data=b"{}")
        assert limited.status == 429
        assert int(limited.headers["Retry-After"]) >= 1
    assert d.value("streamproc_ingest_refused_total", endpoint="events", reason="rate_limited") == 1


async def test_a_body_over_the_limit_is_413_chunked_or_not(tmp_path) -> None:
    d = Direct(tmp_path)
    d.ingest.settings.max_body_bytes = 1000
    async with TestClient(served(d.ingest)) as client:
        answer = await client.post("/api/v1/events/cicd-events", data=b"x" * 1001)
        assert answer.status == 413

        async def chunks():
            for _ in range(5):
                yield b"y" * 300

        answer = await client.post("/api/v1/events/cicd-events", data=chunks())
        assert answer.status == 413
    assert d.judge.stats.records_in == 0


# -- the endpoints with Kafka: produced and acknowledged before the answer ----------------------


@pytest.mark.kafka
async def test_with_kafka_accepted_records_are_in_the_topic_and_rejected_in_its_dlq(
    kafka, tmp_path
) -> None:
    topic = f"cicd-{uuid.uuid4().hex[:8]}"
    config = parse_config_text(
        _config(
            tmp_path,
            f"ingest:\n  webhooks:\n    github: {{secret: {SECRET}}}\n",
            topics=f"topics:\n  - {{topic: {topic}, family: cicd-events, keyed_by: project}}\n",
            kafka=kafka.bootstrap_servers,
        )
    )
    kwargs = config.kafka.client_kwargs()
    await ensure_topics(kwargs, {topic: 3, topic + ".dlq": 1})
    producer = AIOKafkaProducer(**kwargs, acks="all")
    await producer.start()
    try:
        dead = KafkaDeadLetters(producer)
        targets = [KafkaTarget(producer, dead.write, Judge(config))]
        ingest = Ingest(config.ingest, config.bindings, targets)
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        batch = [
            {"timestamp": now, "type": "pipeline", "status": "success", "project": "web"},
            {"timestamp": now, "type": "deployment", "service": "api"},
            {"type": "pipeline"},
        ]
        body = sample("github-workflow_run-failure.json")
        async with TestClient(served(ingest)) as client:
            answer = await client.post(
                f"/api/v1/events/{topic}",
                data=orjson.dumps(batch),
                headers={"Content-Type": "application/json"},
            )
            assert answer.status == 207
            assert [(e["index"], e["reason"]) for e in (await answer.json())["errors"]] == [
                (2, "missing_field")
            ]
            hook = await client.post(
                "/api/v1/webhooks/github", data=body, headers=github_headers(body)
            )
            assert hook.status == 200, await hook.text()
    finally:
        await producer.stop()
    records = await read_records(kafka.bootstrap_servers, topic, 3, timeout=20)
    assert sorted((r.key, orjson.loads(r.value)["type"]) for r in records) == [
        (b"acme/payments-api/CI", "pipeline"),
        (b"api", "deployment"),
        (b"web", "pipeline"),
    ]
    dlq = await read_records(kafka.bootstrap_servers, topic + ".dlq", 1, timeout=20)
    assert orjson.loads(dlq[0].value)["reason"] == "missing_field"


async def test_before_the_runtime_is_attached_every_endpoint_answers_503(tmp_path) -> None:
    config = parse_config_text(
        _config(tmp_path, f"ingest:\n  webhooks:\n    github: {{secret: {SECRET}}}\n")
    )
    ingest = Ingest.for_config(config)
    async with TestClient(served(ingest)) as client:
        for path in ("/api/v1/events/cicd-events", "/api/v1/webhooks/github"):
            answer = await client.post(path, data=b"{}")
            assert answer.status == 503 and answer.headers["Retry-After"]
    ingest.close()
    assert (tmp_path / "state" / "webhook-deliveries.sqlite3").exists()


def test_check_config_lists_the_endpoints_and_never_a_secret(tmp_path, capsys, monkeypatch) -> None:
    from streamproc.commands.cli import main as cli

    monkeypatch.setenv("GH_SECRET", SECRET)
    path = tmp_path / "streamproc.yaml"
    path.write_text(
        _config(
            tmp_path,
            "ingest:\n  rate_limit: {per_second: 5, burst: 10}\n"
            "  webhooks:\n    github: {secret: ${GH_SECRET}}\n",
        )
    )
    assert cli(["check-config", "-c", str(path)]) == 0
    out = capsys.readouterr().out
    assert "POST /api/v1/events/cicd-events -> judged at once (MQTT binding)" in out
    assert "POST /api/v1/webhooks/github -> cicd-events (secret set)" in out
    assert "5 requests/s per client address, burst 10" in out
    assert SECRET not in out


def test_every_ingest_metric_the_operations_doc_names_exists() -> None:
    import re

    doc = (REPO / "docs" / "operations.md").read_text()
    named = set(re.findall(r"`(streamproc_(?:ingest|webhooks)_\w+?)(?:_total)?`", doc))
    exposed = Metrics(process_metrics=False).exposition().decode()
    assert named == {
        "streamproc_ingest_records",
        "streamproc_ingest_refused",
        "streamproc_webhooks_ignored",
    }
    for name in named:
        assert f"# TYPE {name}_total counter" in exposed or f"# TYPE {name} counter" in exposed


def test_any_json_in_any_provider_shape_maps_ignores_or_is_a_bad_payload() -> None:
    """Fuzz: whatever JSON a sender puts where a field is expected, a parser returns a record
    or a reason, or raises BadPayload (a 400): never another exception (a 500)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    # what orjson.loads can give: 64-bit integers, finite floats
    leaf = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**64 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=20),
    )
    value = st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
        ),
        max_leaves=8,
    )
    shapes = [
        ("github", {"X-GitHub-Event": "workflow_run"}, "github-workflow_run-failure.json"),
        (
            "github",
            {"X-GitHub-Event": "deployment_status"},
            "github-deployment_status-success.json",
        ),
        ("gitlab", {"X-Gitlab-Event": "Pipeline Hook"}, "gitlab-pipeline-failed.json"),
        ("gitlab", {"X-Gitlab-Event": "Deployment Hook"}, "gitlab-deployment-success.json"),
        ("jenkins", {}, "jenkins-finalized-failure.json"),
    ]

    @settings(max_examples=300, deadline=None)
    @given(st.sampled_from(shapes), st.lists(st.tuples(st.integers(0, 50), value), max_size=4))
    def check(shape, replacements) -> None:
        provider, headers, name = shape
        payload = json.loads(sample(name))
        for index, new in replacements:  # replace a field somewhere in the payload
            nodes = [payload]
            for node in nodes:
                for child in node.values():
                    if isinstance(child, dict):
                        nodes.append(child)
            node = nodes[index % len(nodes)]
            keys = sorted(node)
            if keys:
                node[keys[index % len(keys)]] = new
        try:
            out = webhooks.PARSERS[provider](headers, payload)
        except webhooks.BadPayload:
            return
        if isinstance(out, webhooks.Mapped):
            orjson.dumps(out.record)

    check()


async def test_on_the_listener_events_need_the_bearer_token_and_webhooks_their_secret(
    tmp_path,
) -> None:
    import asyncio

    import aiohttp

    from streamproc.http.listener import Listener
    from streamproc.sources.http import WEBHOOKS_PATH

    d = Direct(tmp_path)
    listener = Listener("127.0.0.1", 0, token="api-token")
    listener.mount(API_PREFIX, ingest_app(d.ingest))
    listener.without_token(API_PREFIX + WEBHOOKS_PATH + "/")
    await listener.start()
    try:
        host, port = listener.address
        base = f"http://{host}:{port}"
        body = sample("github-workflow_run-failure.json")
        async with aiohttp.ClientSession() as session:
            async with session.post(base + "/api/v1/events/cicd-events", data=b"{}") as r:
                assert r.status == 401
            async with session.post(
                base + "/api/v1/events/cicd-events",
                data=b"{}",
                headers={"Authorization": "Bearer api-token"},
            ) as r:
                assert r.status == 400  # through to the endpoint: {} is no cicd record
            async with session.post(
                base + "/api/v1/webhooks/github", data=body, headers=github_headers(body)
            ) as r:
                assert r.status == 200
        # a path that only looks like a webhook's does not skip the token
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(
            b"POST /api/v1/webhooks/../events/cicd-events HTTP/1.1\r\n"
            b"Host: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
        )
        status_line = await reader.readline()
        writer.close()
        assert status_line.split()[1] in (b"401", b"404"), status_line
    finally:
        await listener.stop()
    assert [a.kind for a in await d.alerts()] == ["pipeline_failed"]


@pytest.mark.kafka
async def test_after_a_reload_records_are_validated_by_the_new_mapping(kafka, tmp_path) -> None:
    from streamproc.pipeline.reload import apply_to_judge, plan

    topic = f"cicd-{uuid.uuid4().hex[:8]}"

    def config(ts_field: str, rate: int):
        return parse_config_text(
            _config(
                tmp_path,
                f"ingest:\n  rate_limit: {{per_second: {rate}}}\n",
                topics=f"topics:\n  - {{topic: {topic}, family: cicd-events,\n"
                f"     fields: {{timestamp: {ts_field}}}}}\n",
                kafka=kafka.bootstrap_servers,
            )
        )

    old, new = config("ts", 50), config("time", 50)
    await ensure_topics(old.kafka.client_kwargs(), {topic: 1, topic + ".dlq": 1})
    producer = AIOKafkaProducer(**old.kafka.client_kwargs(), acks="all")
    await producer.start()
    try:
        judge = Judge(old)
        dead = KafkaDeadLetters(producer)
        ingest = Ingest(old.ingest, old.bindings, [KafkaTarget(producer, dead.write, judge)])
        record = orjson.dumps({"time": "2026-11-29T10:00:00Z", "type": "pipeline"})
        async with TestClient(served(ingest)) as client:
            before = await client.post(f"/api/v1/events/{topic}", data=record)
            assert before.status == 400  # no "ts": the timestamp is missing
            assert plan(old, new) == []  # a mapping is applied live
            apply_to_judge(judge, new)
            after = await client.post(f"/api/v1/events/{topic}", data=record)
            assert after.status == 200, await after.text()
    finally:
        await producer.stop()
    assert plan(old, config("time", 7)) == ["ingest: settings (rate limit, webhooks)"]


async def test_on_the_listener_a_body_of_an_unsupported_encoding_is_counted_logged_and_415(
    tmp_path, caplog
) -> None:
    """br and zstd without their libraries, or an encoding aiohttp does not know: refused by
    the endpoint, as an oversize body is (counted by reason, logged at a bounded rate), not
    by the server before the endpoint sees it."""
    import gzip
    import logging
    import zlib

    import aiohttp

    from streamproc.http.listener import Listener

    d = Direct(tmp_path)
    listener = Listener("127.0.0.1", 0)
    listener.mount(API_PREFIX, ingest_app(d.ingest))
    await listener.start()
    record = orjson.dumps(
        {"timestamp": "2026-11-29T10:00:00Z", "type": "pipeline", "status": "success"}
    )
    encodings = ["br", "zstd", "compress", "gzip, br", "x-snappy"]
    try:
        url = "http://{}:{}/api/v1/events/cicd-events".format(*listener.address)
        async with aiohttp.ClientSession(auto_decompress=False) as session:
            with caplog.at_level(logging.WARNING, "streamproc.sources.http"):
                for encoding in encodings:
                    # (the bytes need not be of that encoding: it is refused by name)
                    headers = {"Content-Encoding": encoding}
                    async with session.post(url, data=record, headers=headers) as r:
                        assert r.status == 415, (encoding, await r.text())
                        answer = await r.json()
                        assert answer["supported"] == ["identity", "gzip", "deflate"]
                        assert repr(encoding) in answer["error"]
                        assert r.headers["Accept-Encoding"] == "identity, gzip, deflate"
            # the encodings supported are still read, by the endpoint now
            for encoding, encode in (("gzip", gzip.compress), ("deflate", zlib.compress)):
                headers = {"Content-Encoding": encoding}
                async with session.post(url, data=encode(record), headers=headers) as r:
                    assert (r.status, await r.json()) == (200, {"accepted": 1, "rejected": 0})
    finally:
        await listener.stop()
    refused = d.value(
        "streamproc_ingest_refused_total",
        endpoint="events/cicd-events",
        reason="unsupported_encoding",
    )
    assert refused == len(encodings)
    logged = [r for r in caplog.records if "refused (415)" in r.getMessage()]
    assert 1 <= len(logged) < len(encodings)  # one, unless 10 s passed between two
    assert "events/cicd-events" in logged[0].getMessage()

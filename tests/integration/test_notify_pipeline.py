"""The notify stages one at a time, each driven alone through ``run(batch)``; then the
pipeline the Notifier builds from them: its order, and how a reload swaps it."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from streamproc.alerts import Alert, fingerprint
from streamproc.notify import Notifier
from streamproc.notify.channels import Channel, load_channels
from streamproc.notify.dedup import Dedup, DedupQueueStage, DedupStage
from streamproc.notify.deliver import ChannelSender, DeliverStage, Hooks, Messages, SendResult
from streamproc.notify.group import Grouper, GroupStage
from streamproc.notify.inhibit import InhibitFlushedStage, Inhibitor, InhibitStage, parse_rules
from streamproc.notify.outbox import Outbox, OutboxRow, OutboxStage
from streamproc.notify.ratelimit import Pacing, RateLimitStage, TokenBucket
from streamproc.notify.resend import FiringTable
from streamproc.notify.retry import GiveUp, RetryPolicy, RetryStage
from streamproc.notify.routing import Router, RouteStage
from streamproc.notify.settings import NotifySettings, RetrySettings, parse_settings
from streamproc.notify.silences import SilenceStore
from streamproc.notify.stage import Batch, Routed, Sent, StageSuspended, Unit, run_in_tx
from streamproc.notify.store import Tx, open_db
from streamproc.notify.templates import Renderer
from streamproc.notify.undelivered import DeadLetters
from tests.paths import REPO


def alert(
    kind: str = "brute_force",
    severity: str = "high",
    *,
    family: str = "auth-logs",
    key: dict | None = None,
    status: str = "firing",
    incident: object = 1,
) -> Alert:
    key = key if key is not None else {"username": "alice", "ip_address": "203.0.113.9"}
    return Alert(
        kind=kind,
        severity=severity,
        status=status,
        key=key,
        fingerprint=fingerprint(kind, key, incident),
        event_time=1_700_000_000.0,
        title="t",
        body="b",
        labels={"kind": kind},
        family=family,
    )


def run(stage: Any, batch: Batch[Any]) -> Batch[Any]:
    return asyncio.run(stage.run(batch))


def two_channels(routes: list[dict[str, Any]]) -> tuple[NotifySettings, list[Channel]]:
    settings = parse_settings(
        {
            "urls": [
                {"url": "json://a.example/hook", "tags": ["team-a"]},
                {"url": "json://b.example/hook", "tags": ["team-b"]},
            ],
            "routes": routes,
        }
    )
    channels, _ = load_channels(settings)
    return settings, channels


# -- ingest: inhibit, silence, route, dedup, group ----------------------------------------------


def test_inhibit_stage_drops_muted_alerts_and_counts_them(tmp_path: Path) -> None:
    inhibitor = Inhibitor(open_db(tmp_path), parse_rules(None), ttl=3600)
    crit = alert("host_down", "critical", key={"host": "web-1"}, family="host-metrics")
    warn = alert("cpu_high", "high", key={"host": "web-1"}, family="host-metrics")
    out = run(InhibitStage(inhibitor), Batch(100.0, [warn, crit]))
    assert out.items == [crit] and out.counts == {"inhibited": 1}


def test_inhibit_on_flush_mutes_what_waited_but_records_no_source(tmp_path: Path) -> None:
    inhibitor = Inhibitor(open_db(tmp_path), parse_rules(None), ttl=3600)
    crit = alert("host_down", "critical", key={"host": "web-1"}, family="host-metrics")
    warn = alert("cpu_high", "high", key={"host": "web-1"}, family="host-metrics")
    stage = InhibitFlushedStage(inhibitor)
    # a critical only seen in a flush is no source: it arrived through the ingest stage
    out = run(stage, Batch(1.0, [Routed(crit, "ch", "g"), Routed(warn, "ch", "g")]))
    assert [r.alert for r in out.items] == [crit, warn]
    run(InhibitStage(inhibitor), Batch(2.0, [crit]))  # arrives (during group_wait)
    out = run(stage, Batch(3.0, [Routed(warn, "ch", "g")]))
    assert out.items == [] and out.counts == {"inhibited": 1}


def test_silence_stage_passes_on_what_no_silence_matches(tmp_path: Path) -> None:
    store = SilenceStore(open_db(tmp_path))
    store.add(["username=alice"], duration=60, now=0.0)
    bob = alert(key={"username": "bob", "ip_address": "1"})
    out = run(store, Batch(1.0, [alert(), bob]))
    assert out.items == [bob] and out.counts == {"silenced": 1}


def test_route_stage_sends_a_resolve_where_its_firing_went(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    settings, channels = two_channels(
        [
            {"match": {"status": "firing"}, "tags": ["team-a"]},
            {"match": {"status": "resolved"}, "tags": ["team-b"]},
        ]
    )
    a, b = channels
    stage = RouteStage(
        Router.from_settings(settings, channels),
        {c.id: c for c in channels},
        dedup=Dedup(db, repeat_interval=60),
        grouper=Grouper(db, group_by=["kind"], group_wait=0, group_interval=0),
    )
    firing = alert()
    lone = alert(incident=2, status="resolved")  # its firing went nowhere: routed as itself
    out = run(stage, Batch(0.0, [firing, alert(status="resolved"), lone]))
    assert [(r.alert.status, r.channel) for r in out.items] == [
        ("firing", a.id),
        ("resolved", a.id),
        ("resolved", b.id),
    ]


def test_route_stage_keeps_alerts_no_channel_takes_for_the_dead_letters(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    _settings, channels = two_channels([])
    stage = RouteStage(
        Router([], channels),
        {c.id: c for c in channels},
        dedup=Dedup(db, repeat_interval=60),
        grouper=Grouper(db, group_by=["kind"], group_wait=0, group_interval=0),
    )
    out = run(stage, Batch(0.0, [alert()]))
    assert out.items == [] and [a.fingerprint for a in out.unrouted] == [alert().fingerprint]


def test_dedup_stage_drops_what_the_log_has_and_writes_nothing(tmp_path: Path) -> None:
    dedup = Dedup(open_db(tmp_path), repeat_interval=3600)
    sent, new = alert(), alert(incident=2)
    dedup.mark("ch", [(sent.fingerprint, "firing")], "sent", now=0.0)
    out = run(
        DedupStage(dedup),
        Batch(1.0, [Routed(sent, "ch"), Routed(new, "ch"), Routed(sent, "other")]),
    )
    assert out.items == [Routed(new, "ch"), Routed(sent, "other")]
    assert out.counts == {"deduplicated": 1}
    assert not dedup.seen("ch", new, now=1.0)  # not marked: it still has to be grouped


def test_dedup_on_flush_queues_each_alert_once_per_channel(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    dedup = Dedup(db, repeat_interval=3600)
    a = alert()
    stage = DedupQueueStage(dedup)
    with Tx(db):
        out = run(
            stage,
            Batch(1.0, [Routed(a, "ch", "g1"), Routed(a, "ch", "g2"), Routed(a, "other", "g1")]),
        )
    assert out.items == [Routed(a, "ch", "g1"), Routed(a, "other", "g1")]
    assert dedup.seen("ch", a, now=2.0)  # queued
    with Tx(db):
        assert run(stage, Batch(2.0, [Routed(a, "ch", "g3")])).items == []


def test_group_stage_parks_alerts_until_their_group_is_due(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    stage = GroupStage(Grouper(db, group_by=["kind"], group_wait=30, group_interval=300))
    a, b = alert(), alert(incident=2)
    with Tx(db):
        out = run(stage, Batch(0.0, [Routed(a, "ch"), Routed(b, "ch"), Routed(a, "ch")]))
    assert out.items == [] and out.counts == {"grouped": 2}
    assert stage.grouper.due(29.0) == []
    due = stage.grouper.due(30.0)
    with Tx(db):
        taken = stage.take(due, 30.0)
    gkey = due[0][1]
    assert [(r.alert.fingerprint, r.channel, r.gkey) for r in taken.items] == [
        (a.fingerprint, "ch", gkey),
        (b.fingerprint, "ch", gkey),
    ]


def test_outbox_stage_writes_one_row_per_group_and_a_removed_channel_uses_the_fallback(
    tmp_path: Path,
) -> None:
    db = open_db(tmp_path)
    outbox = Outbox(db)
    woken: list[str] = []
    stage = OutboxStage(outbox, {"a", "fb"}, "fb", woken.append)
    x, y, z = alert(), alert(incident=2), alert(incident=3)
    with Tx(db):
        out = run(
            stage, Batch(5.0, [Routed(x, "a", "g1"), Routed(z, "gone", "g2"), Routed(y, "a", "g1")])
        )
    assert out.items == [] and out.counts == {"messages_queued": 2}
    [row_a] = outbox.due("a", 5.0)
    [row_fb] = outbox.due("fb", 5.0)
    assert [al.fingerprint for al in row_a.alerts] == [x.fingerprint, y.fingerprint]
    assert row_fb.origin == "gone" and row_fb.home == "gone" and sorted(woken) == ["a", "fb"]


def test_ingest_stages_in_one_transaction_may_not_await(tmp_path: Path) -> None:
    class Slow:
        name = "slow"

        async def run(self, batch: Batch[Any]) -> Batch[Any]:
            await asyncio.sleep(0)
            return batch

    with pytest.raises(StageSuspended, match="slow"):
        run_in_tx([Slow()], Batch(0.0, []))


# -- delivering: rate limit, deliver, retry ----------------------------------------------------


def rows(outbox: Outbox, db: Any, n: int, now: float = 0.0) -> list[OutboxRow]:
    with Tx(db):
        outbox.enqueue_many([("ch", f"g{i}", [alert(incident=i)], None) for i in range(n)], now)
    return outbox.due("ch", now, limit=1000)


def test_rate_limit_stage_sends_the_oldest_alone_and_rolls_the_rest_into_a_digest(
    tmp_path: Path,
) -> None:
    db = open_db(tmp_path)
    due = rows(Outbox(db), db, 12)
    pacing = Pacing(TokenBucket(rate=1.0, burst=5))
    stage = RateLimitStage(pacing, lambda: 8, digest_max=200)
    assert stage.fetch_limit(0.0, free=8) == 5 + 200
    out = run(stage, Batch(0.0, due))
    assert [len(u.rows) for u in out.items] == [1, 1, 1, 1, 8]
    assert out.items[0].rows == [due[0]] and pacing.bucket.available(0.0) == 0


def test_rate_limit_stage_starts_no_more_sends_than_free_slots(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    pacing = Pacing(TokenBucket(rate=0.0, burst=1))  # unlimited
    out = run(
        RateLimitStage(pacing, lambda: 2, digest_max=200), Batch(0.0, rows(Outbox(db), db, 5))
    )
    assert [len(u.rows) for u in out.items] == [1, 1]


async def test_deliver_stage_sends_each_unit_and_passes_on_every_answer(
    receiver: Any, tmp_path: Path
) -> None:
    db = open_db(tmp_path)
    [channel], _ = load_channels(parse_settings({"urls": [receiver.url()]}))
    sender = ChannelSender(channel)
    outcomes: list[str] = []
    hooks = Hooks(on_delivery=lambda name, outcome, _s: outcomes.append(outcome))
    stage = DeliverStage(
        channel,
        sender,
        Messages(Renderer(), FiringTable(db), group_by=["kind"], clock=time.time),
        hooks,
    )
    try:
        due = rows(Outbox(db), db, 3)
        out = await stage.run(Batch(0.0, [Unit(due[:1]), Unit(due[1:])]))
        receiver.status = 500
        failed = await stage.run(Batch(0.0, [Unit(due[:1])]))
    finally:
        sender.close()
    assert [s.result.ok for s in out.items] == [True, True]
    assert [len(g) for g in out.items[1].groups] == [1, 1] and out.counts == {"digests": 1}
    assert len(receiver.accepted) == 2
    assert failed.items[0].result.status == 500 and outcomes == ["sent", "sent", "failed"]


def retry_stage(
    tmp_path: Path, pacing: Pacing, *, max_attempts: int = 2
) -> tuple[RetryStage, Outbox, Any, DeadLetters, list[float]]:
    db = open_db(tmp_path)
    outbox = Outbox(db)
    dead = DeadLetters(tmp_path)
    clock = [100.0]
    channel = two_channels([])[1][0]
    give_up = GiveUp(
        db,
        outbox,
        Dedup(db, repeat_interval=0.0),
        dead,
        fallbacks=[],
        channels={},
        counters=Counter(),
        hooks=Hooks(),
        clock=lambda: clock[0],
        wake=lambda _cid: None,
    )
    policy = RetryPolicy(RetrySettings(initial=1.0, max_attempts=max_attempts))
    stage = RetryStage(
        channel,
        pacing,
        policy,
        outbox=outbox,
        db=db,
        give_up=give_up,
        channel_counts=Counter(),
        clock=lambda: clock[0],
    )
    return stage, outbox, db, dead, clock


async def test_retry_stage_backs_off_a_failure_then_dead_letters_it(tmp_path: Path) -> None:
    pacing = Pacing(TokenBucket(rate=1.0, burst=5))
    stage, outbox, db, dead, clock = retry_stage(tmp_path, pacing, max_attempts=2)
    [row] = rows(outbox, db, 1, now=100.0)
    failure = SendResult(False, status=500, error="HTTP 500")
    out = await stage.run(Batch(100.0, [Sent([row], [row.alerts], failure)]))
    assert out.items == [] and out.counts == {"send_failures": 1}
    assert pacing.failures == 1 and 100.5 <= pacing.paused_until <= 101.0
    [again] = outbox.due("ch", 200.0)
    assert again.attempts == 1 and again.next_at == pacing.paused_until
    clock[0] = 200.0
    await stage.run(Batch(200.0, [Sent([again], [again.alerts], failure)]))
    assert outbox.count() == 0 and [d["reason"] for d in dead.read_file()] == ["delivery_failed"]


async def test_retry_stage_pauses_the_channel_on_429_without_counting_an_attempt(
    tmp_path: Path,
) -> None:
    pacing = Pacing(TokenBucket(rate=1.0, burst=5))
    stage, outbox, db, _dead, _clock = retry_stage(tmp_path, pacing)
    [row] = rows(outbox, db, 1, now=100.0)
    limited = SendResult(False, status=429, retry_after=7.0, error="HTTP 429")
    out = await stage.run(Batch(100.0, [Sent([row], [row.alerts], limited)]))
    assert out.items == [] and out.counts == {"send_failures": 1, "rate_limited": 1}
    assert pacing.paused_until == 107.0 and pacing.bucket.available(100.0) == 0
    [again] = outbox.due("ch", 107.0)
    assert again.attempts == 0 and again.next_at == 107.0


async def test_retry_stage_passes_deliveries_on_and_resets_the_failures(tmp_path: Path) -> None:
    pacing = Pacing(TokenBucket(rate=1.0, burst=5), failures=3)
    stage, outbox, db, _dead, _clock = retry_stage(tmp_path, pacing)
    [row] = rows(outbox, db, 1, now=100.0)
    sent = Sent([row], [row.alerts], SendResult(True, status=200))
    out = await stage.run(Batch(100.0, [sent]))
    assert out.items == [sent] and pacing.failures == 0
    assert outbox.count() == 1  # recording the delivery is the notification log's job


# -- the pipeline, as the Notifier builds it -------------------------------------------------


def host_alert(kind: str, severity: str) -> Alert:
    return alert(kind, severity, key={"host": "web-1"}, family="host-metrics")


async def test_the_pipeline_is_one_list_in_alertmanager_order(
    receiver: Any, tmp_path: Path
) -> None:
    n = Notifier.from_config({"urls": [receiver.url()]}, state_dir=tmp_path)
    await n.start()
    try:
        assert n.pipeline is not None and n.pipeline.names() == [
            "inhibit",
            "silence",
            "route",
            "dedup",
            "group",  # submit(), one transaction
            "inhibit",
            "dedup",
            "outbox",  # a group flush, one transaction
            "rate limit",
            "deliver",
            "retry",
        ]  # each channel's worker
        assert n.pipeline.ingest[1] is n.silences
        [worker] = n.workers.values()
        assert worker.stages is n.pipeline.channels[worker.channel.id]
    finally:
        await n.close()


async def test_an_alert_both_inhibited_and_silenced_is_inhibited_first(
    receiver: Any, tmp_path: Path
) -> None:
    n = Notifier.from_config({"urls": [receiver.url()]}, state_dir=tmp_path)
    await n.start()
    try:
        assert isinstance(n.silences, SilenceStore)
        n.silences.add(["kind=cpu_high"], duration=3600)
        await n.submit([host_alert("host_down", "critical"), host_alert("cpu_high", "high")])
        assert (n.counters["inhibited"], n.counters["silenced"]) == (1, 0)
        assert n.counters["grouped"] == 1
    finally:
        await n.close()


async def test_reload_swaps_the_pipeline_and_each_channel_keeps_its_pacing(
    receiver: Any, tmp_path: Path
) -> None:
    n = Notifier.from_config({"urls": [receiver.url()]}, state_dir=tmp_path)
    await n.start()
    try:
        before = n.pipeline
        [worker] = n.workers.values()
        pacing, router = worker.pacing, n.router
        n.reload({"urls": [receiver.url()], "digest_max": 7, "repeat_interval": "1m"})
        assert n.pipeline is not before and n.pipeline is not None
        assert worker.stages is n.pipeline.channels[worker.channel.id]
        assert worker.stages.rate_limit.digest_max == 7 and n.dedup.repeat_interval == 60
        assert worker.pacing is pacing and worker.stages.retry.pacing is pacing
        assert n.router is not router and n.pipeline.route.router is n.router
    finally:
        await n.close()


async def test_the_docs_table_lists_the_stages_in_the_pipelines_order(
    receiver: Any, tmp_path: Path
) -> None:
    doc = (REPO / "docs" / "notify.md").read_text()
    rows = doc.split("| stage | module | what it does |\n", 1)[1].split("\n\n", 1)[0]
    table = [line.split("|")[1].strip() for line in rows.splitlines()[1:]]  # after |---|
    n = Notifier.from_config({"urls": [receiver.url()]}, state_dir=tmp_path)
    await n.start()
    try:
        assert n.pipeline is not None
        in_order = list(dict.fromkeys(n.pipeline.names()))  # inhibit, dedup: where first run
    finally:
        await n.close()
    assert table[: len(in_order)] == in_order

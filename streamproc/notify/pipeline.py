"""The notify pipeline, built in one place: ``build_pipeline`` returns its stages in order.

    submit(batch) ─► inhibit ─► silence ─► route ─► dedup ─► group    one SQLite transaction;
                                                               ║       submit() returns here
                                           group timers due ───╜
    flush         ─► inhibit ─► dedup ─► outbox                     one SQLite transaction
                                            ║
                 one worker per channel ────╜   (worker.py)
    deliver       ─► rate limit ─► deliver ─► retry ─► notification log ("sent")
                                                  └─► fallback channel ─► dead letters

Every stage has one method, ``run(batch) -> batch`` (stage.py), over the whole batch at once,
and can be driven alone by a test. The ``║`` are where a batch is parked on disk (the group
tables, the outbox) and picked up later by a timer or a channel's worker: a crash at any
point leaves each alert in exactly one of those places (store.py has the order of operations).

What a reload may change (routes, templates, inhibit rules, timers, retry) is gathered in a
``Policy``, built and checked first; ``build_pipeline`` then builds new stages over the same
state (database tables, channel workers), and ``Notifier.use`` swaps them in one step.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .channels import Channel
from .dedup import Dedup, DedupQueueStage, DedupStage
from .deliver import DeliverStage, Hooks, Messages
from .group import Grouper, GroupStage
from .inhibit import InhibitFlushedStage, Inhibitor, InhibitRule, InhibitStage, parse_rules
from .outbox import Outbox, OutboxStage
from .ratelimit import RateLimitStage
from .resend import FiringTable
from .retry import GiveUp, RetryPolicy, RetryStage
from .routing import Router, RouteStage
from .settings import NotifySettings
from .silences import SilenceStage
from .stage import Stage
from .templates import Renderer
from .worker import ChannelStages, ChannelWorker


@dataclass(frozen=True, slots=True)
class Policy:
    """Everything a reload may change, built (and so checked) before anything is swapped.
    The one place a Router and a Renderer are made for the notifier."""

    settings: NotifySettings
    router: Router
    renderer: Renderer
    inhibit_rules: list[InhibitRule]
    retry: RetryPolicy

    @classmethod
    def build(cls, settings: NotifySettings, channels: list[Channel]) -> Policy:
        return cls(
            settings=settings,
            router=Router.from_settings(settings, channels),
            renderer=Renderer(
                settings.templates,
                max_value_len=settings.max_value_len,
                max_title_len=settings.max_title_len,
                max_body_len=settings.max_body_len,
                max_group_items=settings.max_group_items,
            ),
            inhibit_rules=parse_rules(settings.inhibit_rules),
            retry=RetryPolicy(settings.retry),
        )

    def timers(self, channels: dict[str, Channel]) -> Callable[[str], tuple[float, float]]:
        """channel id -> (group_wait, group_interval): the channel's own, else the setting."""
        s = self.settings

        def timers(channel_id: str) -> tuple[float, float]:
            ch = channels.get(channel_id)
            wait = ch.group_wait if ch is not None and ch.group_wait is not None else s.group_wait
            interval = (
                ch.group_interval
                if ch is not None and ch.group_interval is not None
                else s.group_interval
            )
            return wait, interval

        return timers


@dataclass(slots=True)
class State:
    """What the stages work on and what outlives a reload: the database and its tables,
    the channels and their workers, the notifier's counters and hooks."""

    db: sqlite3.Connection
    silences: SilenceStage
    outbox: Outbox
    firing: FiringTable
    channels: dict[str, Channel]
    fallbacks: list[Channel]
    workers: dict[str, ChannelWorker]
    give_up: GiveUp
    hooks: Hooks
    clock: Callable[[], float]
    channel_counters: dict[str, Counter[str]] = field(default_factory=dict)


@dataclass(slots=True)
class Pipeline:
    ingest: list[Stage[Any, Any]]  # submit(): inhibit, silence, route, dedup, group
    flush: list[Stage[Any, Any]]  # group timers due: inhibit, dedup, outbox
    channels: dict[str, ChannelStages]  # per channel: rate limit, deliver, retry
    # the stores behind the stages, for what is not a stage (housekeeping, draining)
    inhibitor: Inhibitor
    grouper: Grouper
    dedup: Dedup
    group: GroupStage
    route: RouteStage
    messages: Messages

    def names(self) -> list[str]:
        """The stages in order, one channel's delivering end standing for all."""
        deliver = next(iter(self.channels.values()), None)
        return [s.name for s in (*self.ingest, *self.flush, *(deliver or ()))]


def _free_slots(worker: ChannelWorker) -> Callable[[], int]:
    return lambda: worker.sender.free


def build_pipeline(policy: Policy, state: State) -> Pipeline:
    """The notify stages, in order, over ``state``; see the module docstring for the drawing."""
    s = policy.settings
    db = state.db
    inhibitor = Inhibitor(db, policy.inhibit_rules, s.inhibit_ttl)
    grouper = Grouper(
        db,
        group_by=s.group_by,
        group_wait=s.group_wait,
        group_interval=s.group_interval,
        channel_timers=policy.timers(state.channels),
    )
    dedup = Dedup(db, repeat_interval=s.repeat_interval)
    group = GroupStage(grouper)
    route = RouteStage(policy.router, state.channels, dedup=dedup, grouper=grouper)
    messages = Messages(policy.renderer, state.firing, group_by=list(s.group_by), clock=state.clock)

    def wake(channel_id: str) -> None:
        state.workers[channel_id].wake()

    fallback = state.fallbacks[0].id if state.fallbacks else None
    channels = {
        cid: ChannelStages(
            rate_limit=RateLimitStage(w.pacing, _free_slots(w), digest_max=s.digest_max),
            deliver=DeliverStage(w.channel, w.sender, messages, state.hooks),
            retry=RetryStage(
                w.channel,
                w.pacing,
                policy.retry,
                outbox=state.outbox,
                db=db,
                give_up=state.give_up,
                channel_counts=state.channel_counters.setdefault(w.channel.name, Counter()),
                clock=state.clock,
            ),
        )
        for cid, w in state.workers.items()
    }
    return Pipeline(
        ingest=[InhibitStage(inhibitor), state.silences, route, DedupStage(dedup), group],
        flush=[
            InhibitFlushedStage(inhibitor),
            DedupQueueStage(dedup),
            OutboxStage(state.outbox, state.channels, fallback, wake),
        ],
        channels=channels,
        inhibitor=inhibitor,
        grouper=grouper,
        dedup=dedup,
        group=group,
        route=route,
        messages=messages,
    )

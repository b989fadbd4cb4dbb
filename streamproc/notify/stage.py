"""The one shape every notify stage has: a batch in, what goes on out.

    class Stage(Protocol):
        name: str
        async def run(self, batch: Batch[In]) -> Batch[Out]

A batch is a list of items with the time it is judged at (``now``): the whole list goes
through a stage at once, so a stage that asks SQLite asks once per batch (one ``IN`` query,
one ``executemany``), never once per alert. What a stage drops it counts in ``batch.counts``
(``silenced``, ``deduplicated``...); the pipeline adds them to the notifier's counters.

The items change shape where the pipeline does (pipeline.py draws it):

    Alert ─► route ─► Routed (alert, channel, group key) ─► group | outbox    (parked on disk)
    OutboxRow ─► rate limit ─► Unit (rows sent as one message) ─► deliver ─► Sent ─► retry

Stages are ``async`` because delivering is; the stages that run inside one SQLite
transaction (``run_in_tx``) never await, and ``run_in_tx`` makes sure of it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, Protocol, TypeVar

if TYPE_CHECKING:
    from ..alerts import Alert
    from .deliver import SendResult
    from .outbox import OutboxRow

T = TypeVar("T")
In = TypeVar("In")
Out = TypeVar("Out")


@dataclass(slots=True)
class Batch(Generic[T]):
    now: float
    items: list[T]
    counts: Counter[str] = field(default_factory=Counter)
    # alerts no channel takes (route): dead-lettered as no_route before submit() returns
    unrouted: list[Alert] = field(default_factory=list)

    def next(self, items: list[Any]) -> Batch[Any]:
        """The same batch (time, counts) carrying other items: what a stage passes on."""
        return Batch(self.now, items, self.counts, self.unrouted)


class Stage(Protocol[In, Out]):
    name: str

    async def run(self, batch: Batch[In]) -> Batch[Out]: ...


class Routed(NamedTuple):
    """An alert headed for one channel; ``gkey`` once it was taken from its group.
    (A tuple: a flush makes one per alert and channel, and a frozen dataclass is several
    times slower to build.)"""

    alert: Alert
    channel: str
    gkey: str = ""


@dataclass(slots=True)
class Unit:
    """Outbox rows of one channel sent as one message (one row, or a rate-limit digest)."""

    rows: list[OutboxRow]


@dataclass(slots=True)
class Sent:
    """A unit after its send: the alerts it carried (per row) and the service's answer."""

    rows: list[OutboxRow]
    groups: list[list[Alert]]
    result: SendResult


class StageSuspended(RuntimeError):
    pass


def run_now(stage: Stage[Any, Any], batch: Batch[Any]) -> Batch[Any]:
    """Run one stage to its end without yielding to the event loop.

    Inside a ``BEGIN IMMEDIATE`` transaction on the shared connection, a stage that awaited
    would let another task start its own transaction on that connection ("cannot start a
    transaction within a transaction"). So those stages must not await; this says so loudly.
    """
    coro: Coroutine[Any, Any, Batch[Any]] = stage.run(batch)
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise StageSuspended(f"notify stage {stage.name!r} awaited inside a transaction")


def run_in_tx(stages: Sequence[Stage[Any, Any]], batch: Batch[Any]) -> Batch[Any]:
    """Every stage in order, each over the whole batch (call inside one ``Tx``)."""
    for stage in stages:
        batch = run_now(stage, batch)
    return batch

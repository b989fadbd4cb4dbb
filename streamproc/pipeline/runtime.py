"""Wiring: sources -> decode -> detect -> alert log -> notify, and the commit protocol.

Three kinds of object, each with one job (as aiokafka splits fetcher, coordinator and
subscription state):

- ``Judge`` decodes and judges records (pure CPU, no I/O): bytes in, alerts and dead
  letters out. One DetectorEngine per task, one BatchDecoder per topic binding.
- ``IngestLoop`` reads one source, asks the Judge, makes the results durable (alert log, dead
  letters) and then commits the source (see sources/kafka.py for the order of operations and
  what a crash at each step leaves behind).
- ``DeliveryLoop`` reads the alert log and hands alerts to notify/, acknowledging the alert
  log only after notify/ has accepted them.

``Runtime`` starts them, watches them, and on stop (SIGTERM/SIGINT) lets the batch in flight
finish, commits, drains delivery briefly, and closes everything in reverse order.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import orjson
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from ..alerts import Alert
from ..config import Binding, Config, match_binding
from ..decode import BatchDecoder, DeadLetter, RawRecord
from ..decode.frames import (
    FrameReader,
    RecordFrame,
    columns_enabled,
    frame_reader_for,
    import_numpy_meanwhile,
)
from ..decode.records import DEFAULT_MAX_DEPTH
from ..detectors import DetectorEngine, build_engine
from ..detectors.engine import Rejected
from ..detectors.merge import SourceMerge
from ..events import SOURCE_PROGRESS, Event
from ..ops.backoff import Backoff
from ..sources.base import PartitionedSource
from .batches import (
    EVERY_PARTITION,
    MAX_INTERNAL_RECORD_BYTES,
    MAX_KEY_BYTES,
    BatchWriter,
    fit_key,
)
from .startup import Startup

if TYPE_CHECKING:
    from ..notify.active import ActiveAlerts

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Stats:
    records_in: int = 0
    events: int = 0
    dead_letters: int = 0
    late: int = 0
    alerts: int = 0
    delivered_batches: int = 0
    alerts_submitted: int = 0
    dead_by_reason: dict[str, int] = field(default_factory=dict)
    alerts_by_kind: dict[str, int] = field(default_factory=dict)
    last_record_at: float = 0.0
    repartitioned_in: int = 0  # copies read back from repartition topics
    repartitioned_out: int = 0  # copies written to repartition topics
    # progress marks (pipeline/repartition.py) queued, each to every partition of its topic;
    # and those read back, one a partition
    progress_marks_out: int = 0
    progress_marks_in: int = 0


TaskId = tuple[str, str, int]  # (binding name, topic, partition)
# a batch judged from its columns whose copies are still to ship: (its records, its frame,
# the binding's repartition targets, the task)
_FramedCopies = tuple[list[Any], RecordFrame, list[tuple[str, str]], "TaskId"]
# what a repartition topic's detectors can use, from the record alone (Judge._ship_filter):
# (a record predicate, the column expressions, one a detector)
_ShipFilter = tuple[Callable[[dict[str, Any]], bool], list[Any]]

# what Judge.judge reads of a record (a RawRecord, or aiokafka's ConsumerRecord)
_TOPIC = attrgetter("topic")
_PARTITION = attrgetter("partition")
_VALUE = attrgetter("value")
_OFFSET = attrgetter("offset")


class _Keys:
    """The keys of a run of records, read only for the records that are dead-lettered."""

    __slots__ = ("records",)

    def __init__(self, records: list[RawRecord]) -> None:
        self.records = records

    def __getitem__(self, i: int) -> bytes | None:
        return self.records[i].key


# An MQTT binding keeps event time per topic (one per device): a topic silent this long (wall
# seconds) is forgotten, and at most this many are kept (the least recently active go first).
MQTT_TOPIC_TTL = 3600.0
MQTT_MAX_TOPICS = 10_000


# below this many records a task's batch is judged as Events: reading a frame costs ~60 us a
# call before its first record (numpy's), which ~64 auth records repay (measured: 1,543 ns a
# record at 64 against BatchDecoder's 1,695; 997 against 1,617 at 128)
MIN_FRAME = 128


def tune_gc() -> None:
    """Fewer, later cyclic garbage collections, as long-running CPython services do.

    A judged batch keeps thousands of Events (each with its dict) alive until it ends, and
    CPython's default gen-0 threshold (700 allocations) makes the collector walk them over
    and over: a quarter of detect's CPU (bench detect, same process: 81k events/s with the
    defaults, 107k/s tuned). Reference counting frees nearly all of it anyway; cycles are
    still collected, later. ``freeze`` takes what start-up built (config, contracts, modules)
    out of every future collection.
    """
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def _copy_key(value: Any) -> bytes | None:
    """The Kafka key of a re-keyed copy: the field's value as text (None: no key); a long
    one becomes its hash, the same value always the same partition."""
    if value is None:
        return None
    return fit_key(str(value).encode())


class Judge:
    """Decode and detect, for every binding of a config. No I/O.

    State is kept per *task*, as Kafka Streams does: one DetectorEngine per (binding, topic,
    partition) for Kafka records, so that a partition's state can be checkpointed, handed to
    another worker on a rebalance, and restored there. Keyed detectors are exact when the topic
    is partitioned by (a part of) their key, which is how the default topics are produced
    (auth-logs by username, api-access-logs by ip_address...). MQTT has no partitions: all
    records of an MQTT binding share one task.

    With ``partitioned=False`` (replay, tests, single-process embedded demo) every binding has
    one task whatever the partition. With ``device_topics=False`` (replay) an MQTT binding's
    engine is a plain one: a file is a partition, not a device keeping its own time.

    The Judge owns the decoder of every binding it judges (``decoder``): the HTTP source
    validates with it and a replay decodes with it, and a reload rebuilds it (``rebind``).
    A task's events are judged by ``judge_events``, whoever decoded them: ``judge`` for a
    source's batch, a replay for its files merged in event-time order.
    """

    def __init__(
        self,
        config: Config,
        metrics: Any = None,
        *,
        partitioned: bool = True,
        idle_after: float = 30.0,
        repartition: bool = False,
        clock: Callable[[], float] | None = None,
        device_topics: bool = True,
    ) -> None:
        self.config = config
        self.device_topics = device_topics
        # live: the wall clock, for the engines' ``future`` rule (None: replays and tests)
        self.clock = clock
        self.metrics = metrics
        self.partitioned = partitioned
        self.idle_after = idle_after
        self.decoders: dict[str, BatchDecoder] = {}
        # binding -> its batches read into columns, where a frame can hold its records
        # (decode/frames.py; DetectorEngine.process_frame); None: Events a record at a time
        self.frames: dict[str, FrameReader | None] = {}
        # records a frame vouched for that the per-record decoder then refused (a frame
        # check short of the decoder's: should not happen; they are dead-lettered)
        self.frame_strays = 0
        self.frame_batches = 0  # task batches judged from their columns
        self.engines: dict[TaskId, DetectorEngine] = {}
        self.bindings: dict[str, Binding] = {}
        # binding name -> detector kinds its tasks run (absent: all of the family's)
        self.kinds: dict[str, set[str]] = {}
        # source binding name -> [(field, repartition topic)]
        self.repartition_targets: dict[str, list[tuple[str, str]]] = {}
        # repartitioned records waiting to be produced: (topic, key, value); a progress
        # mark's key is batches.EVERY_PARTITION
        self.outbox: list[tuple[str, Any, bytes]] = []
        # (source binding, field) -> what its repartition topic's detectors can use, or None:
        # every record is shipped (_ship_filter)
        self._ship_filters: dict[tuple[str, str], _ShipFilter | None] = {}
        self._outbox_marks = 0  # progress marks in the outbox
        self.internal: list[Binding] = []
        self.final_dead: list[DeadLetter] = []  # see finish()
        self.names = config.internal_topics
        # (source kind, topic) -> binding (Config.binding_for), for every batch's topics
        self._route_cache: dict[tuple[str, str], Binding | None] = {}
        self._last_counts: dict[Any, tuple[int, int]] = {}
        self.stats = Stats()
        # partition count of a source topic (the Kafka source's metadata), for SourceMerge
        self.partitions_of: Callable[[str], int | None] | None = None
        # (topic, partition) -> records not judged yet (the Kafka source), for SourceMerge
        self.source_behind: Callable[[str, int], bool] | None = None
        # (topic, partition) -> nothing left to read (the Kafka source), for held candidates
        self.source_caught_up: Callable[[str, int], bool] | None = None
        for b in config.bindings:
            self.rebind(b)
            if repartition and b.source == "kafka":
                from . import repartition as rp

                local, remote = rp.plan(config, b)
                if remote:
                    self.kinds[b.name] = local
                    for internal in rp.internal_bindings(config, b):
                        self.rebind(internal)
                        self.internal.append(internal)
                        field, topic = rp.rekeyed(internal)
                        self.kinds[internal.name] = remote[field]
                        self.repartition_targets.setdefault(b.name, []).append((field, topic))
                    log.info(
                        "binding %s: %s run on %s; %s",
                        b.name,
                        ", ".join(sorted(local)) or "no detector",
                        f"keyed_by={b.keyed_by}" if b.keyed_by else "unkeyed records",
                        "; ".join(
                            f"{', '.join(sorted(k))} re-keyed by {f}"
                            for f, k in sorted(remote.items())
                        ),
                    )

    # -- tasks ------------------------------------------------------------------------------

    def task_id(self, binding: Binding, source_kind: str, topic: str, partition: int) -> TaskId:
        if source_kind in ("mqtt", "http") or not self.partitioned:
            return (binding.name, "", 0)
        return (binding.name, topic, partition)

    def engine(self, task: TaskId) -> DetectorEngine:
        engine = self.engines.get(task)
        if engine is None:
            binding = self.bindings[task[0]]
            engine = build_engine(self.config, binding)
            kinds = self.kinds.get(binding.name)
            if kinds is not None:
                engine.set_detectors([d for d in engine.detectors if d.kind in kinds])
            engine.idle_after = self.idle_after
            engine.clock = self.clock
            if binding.source == "mqtt" and self.device_topics:
                # every MQTT topic (device) keeps its own time; see detectors/engine.py
                engine.max_topic_lag = binding.max_time_jump
                engine.key_ttl = MQTT_TOPIC_TTL
                engine.max_keys = MQTT_MAX_TOPICS
                engine.caught_up_when_quiet = True  # no high watermark to compare with
            elif binding.format != "internal":
                engine.caught_up = self._source_caught_up
            elif self.partitioned:
                # a repartitioned task's records come through a second topic: its source
                # partition caught up says nothing of what is still on its way there, the
                # partition it reads caught up and the source quiet do
                engine.input_caught_up = self._repartitioned_caught_up((task[1], task[2]))
            if binding.format == "internal":
                kafka = self.config.kafka
                engine.merge = SourceMerge(
                    binding.family,
                    wait=kafka.repartition_merge_wait if kafka else 2.0,
                    partitions_of=self.partitions_of,
                    behind=self._on_its_way((task[1], task[2]))
                    if self.partitioned
                    else self._source_behind,
                )
            # last source offset judged per source partition (repartitioned records only)
            engine.src_offsets = {}
            self.engines[task] = engine
        return engine

    def tasks_of(self, topic: str, partition: int) -> list[TaskId]:
        return [t for t in self.engines if t[1] == topic and t[2] == partition]

    def stream_time_of(self, topic: str, partition: int) -> float:
        """The largest event time judged of a source partition (-inf: none yet)."""
        return max(
            (self.engines[t].stream_time() for t in self.tasks_of(topic, partition)),
            default=float("-inf"),
        )

    def repartitioned_binding(self, topic: str) -> str | None:
        """The binding a source topic feeds repartition topics for (None: it feeds none, or
        it is a repartition topic itself)."""
        if self.names.is_repartition(topic):
            return None
        binding = self.binding_for("kafka", topic)
        if binding is None or binding.name not in self.repartition_targets:
            return None
        return binding.name

    # -- reload ---------------------------------------------------------------------------

    def rebind(self, binding: Binding) -> None:
        """Judge the records of ``binding.name`` by ``binding`` from now on: its decoder and
        its column reader are built here, at start, on a reload (same name, new mapping or
        limits) and for a binding a replay adds (a default topic no binding names)."""
        name = binding.name
        self.bindings[name] = binding
        self.decoders[name] = BatchDecoder.for_binding(binding)
        self.frames[name] = (
            None
            if binding.format == "internal" or not columns_enabled()
            else frame_reader_for(
                binding.contract,
                binding.format,
                binding.mapping,
                binding.max_record_bytes,
                DEFAULT_MAX_DEPTH,
            )
        )

    def binding(self, name: str) -> Binding | None:
        """The binding of that name as it is judged now (a reload rebinds it)."""
        return self.bindings.get(name)

    def decoder(self, name: str) -> BatchDecoder:
        """The decoder a binding's records are judged with now (a reload rebuilds it)."""
        return self.decoders[name]

    def engines_of(self, binding_name: str) -> list[DetectorEngine]:
        """The engines of a binding's tasks built so far."""
        return [engine for task, engine in self.engines.items() if task[0] == binding_name]

    def use_config(self, config: Config) -> None:
        """Build engines not built yet from ``config``, and route topics by it."""
        self.config = config
        self._route_cache.clear()
        self._ship_filters.clear()

    def drop_tasks(self, topic: str, partition: int) -> None:
        for task in self.tasks_of(topic, partition):
            del self.engines[task]

    def _kind_of(self, task: TaskId) -> str:
        """The source kind whose loop reads a task's records (file bindings: Kafka's)."""
        return "mqtt" if self.bindings[task[0]].source == "mqtt" else "kafka"

    def _source_behind(self, topic: str, partition: int) -> bool:
        return self.source_behind is not None and self.source_behind(topic, partition)

    def _source_caught_up(self, key: tuple[str, int]) -> bool:
        return self.source_caught_up is not None and self.source_caught_up(*key)

    def _repartitioned_caught_up(self, read: tuple[str, int]) -> Callable[[tuple[str, int]], bool]:
        """For a task reading repartition partition ``read``: nothing of a source partition
        is on its way once ``read`` is caught up and the source is not behind here."""

        def caught_up(source: tuple[str, int]) -> bool:
            return self._source_caught_up(read) and not self._source_behind(*source)

        return caught_up

    def _on_its_way(self, read: tuple[str, int]) -> Callable[[str, int], bool]:
        """For the merge of a task reading repartition partition ``read``: whether records of
        a source partition may still be on their way to it. A source judged to its end here is
        not behind, yet its last copies can wait in ``read``'s backlog (below the high
        watermark, not handed out yet) for longer than the merge's wait while the loop serves
        other partitions: the source is not quiet until ``read`` is caught up too. Without a Kafka
        source to ask (a replay, a test), only ``behind`` counts."""
        caught_up = self._repartitioned_caught_up(read)

        def on_its_way(topic: str, partition: int) -> bool:
            if self.source_caught_up is None:
                return self._source_behind(topic, partition)
            return not caught_up((topic, partition))

        return on_its_way

    def binding_for(self, source_kind: str, topic: str) -> Binding | None:
        """``Config.binding_for``, remembered per (source kind, topic). HTTP records name
        their binding as this Judge runs it (a reload keeps running one it cannot apply)."""
        if source_kind == "http":
            return match_binding(self.bindings.values(), source_kind, topic)
        key = (source_kind, topic)
        try:
            return self._route_cache[key]
        except KeyError:
            pass
        found = self.config.binding_for(source_kind, topic, self.internal)
        if len(self._route_cache) < 100_000:  # MQTT: a topic per device, without bound
            self._route_cache[key] = found
        return found

    # -- judging ----------------------------------------------------------------------------

    def judge(
        self,
        records: list[RawRecord],
        source_kind: str = "kafka",
        now: float | None = None,
        runs: list[list[RawRecord]] | None = None,
    ) -> tuple[list[Alert], list[DeadLetter]]:
        """Decode and judge a batch; returns (alerts, dead letters). ``runs``: the same
        records as runs of one topic-partition each, concatenated in order, where the
        source has them (a Kafka fetch): they are then sorted into tasks a run at a time."""
        stats = self.stats
        if records:
            stats.last_record_at = time.time()
        by_task: dict[TaskId, list[Event]] = {}
        dead: list[DeadLetter] = []
        topic_counts: dict[str, int] = {}
        # Each task's records, in arrival order, decoded with one decode_batch call per task
        # (dead letters come per task, each in order). A fetch is long runs of one (topic,
        # partition); an MQTT binding's devices, or a mixed stream, interleave record by
        # record: the topic-partitions are resolved once each, then the records are sorted
        # into their tasks in one pass.
        # each record's place to be sorted by: its (topic, partition), or its topic alone
        # where the batch is of one partition (an MQTT binding's, an HTTP request's, a mixed
        # stream of one): no tuple made and hashed a record (0.27 -> 0.16 us a record of
        # this sorting on bench detect's stream)
        places: list[Any] = []
        by_topic = False
        per_tp: dict[tuple[str, int], int]
        if runs is None:
            record_topics = list(map(_TOPIC, records))
            record_partitions = list(map(_PARTITION, records))
            if records and record_partitions.count(record_partitions[0]) == len(records):
                by_topic = True
                places = record_topics
                per_tp = {(t, record_partitions[0]): n for t, n in Counter(places).items()}
            else:
                places = list(zip(record_topics, record_partitions, strict=True))
                per_tp = Counter(places)
        else:
            per_tp = {}
            for run in runs:
                tp = (run[0].topic, run[0].partition)
                per_tp[tp] = per_tp.get(tp, 0) + len(run)
        task_of: dict[tuple[str, int], TaskId | None] = {}
        tps_of: dict[TaskId, list[tuple[str, int]]] = {}
        for tp, n in per_tp.items():
            topic, partition = tp
            topic_counts[topic] = topic_counts.get(topic, 0) + n
            binding = self.binding_for(source_kind, topic)
            task = None if binding is None else self.task_id(binding, source_kind, topic, partition)
            task_of[tp] = task
            if task is not None:
                tps_of.setdefault(task, []).append(tp)
        groups: dict[TaskId | None, list[Any]]
        if len(set(task_of.values())) <= 1:
            groups = {next(iter(task_of.values())): records} if records else {}
        elif runs is not None:
            groups = {task: [] for task in task_of.values()}
            for run in runs:
                groups[task_of[run[0].topic, run[0].partition]].extend(run)
        else:
            # one pass, each record appended to its task's list: on a stream interleaving
            # six bindings record by record, 0.72 -> 0.43 us a record for this whole method
            # without decoding and detecting (a group per run of one topic-partition before)
            groups = {task: [] for task in task_of.values()}
            appends = {
                tp[0] if by_topic else tp: groups[task].append for tp, task in task_of.items()
            }
            for place, record in zip(places, records, strict=True):
                appends[place](record)
        unbound = groups.pop(None, None)
        if unbound:
            dead.extend(
                DeadLetter(
                    "unbound_topic",
                    f"no topic binding matches {r.topic!r}",
                    r.value or b"",
                    r.topic,
                    r.partition,
                    r.offset,
                    r.key,
                )
                for r in unbound
            )
        mixed = {task for task, its in tps_of.items() if len(its) > 1}
        first_tp = {task: its[0] for task, its in tps_of.items()}
        # tasks judged from their columns: (alerts, rejected, copies to ship), in task order
        framed: dict[TaskId, tuple[list[Alert], list[Rejected], _FramedCopies | None]] = {}
        for task, group in groups.items():
            assert task is not None
            if task not in mixed and self.frames.get(task[0]) is not None:
                out = self._judge_columns(task, group, first_tp[task], now, dead)
                if out is not None:
                    self.frame_batches += 1
                    framed[task] = out
                    if self.metrics is not None:
                        self.metrics.batches_judged.labels(task[0], "columns").inc()
                    by_task[task] = []
                    stats.events += len(group)
                    continue
            if task in mixed:
                topics: Any = list(map(_TOPIC, group))
                partitions: Any = list(map(_PARTITION, group))
            else:
                topics, partitions = first_tp[task]
            if self.metrics is not None:
                self.metrics.batches_judged.labels(task[0], "events").inc()
            events, rejected = self.decoders[task[0]].decode_batch(
                list(map(_VALUE, group)),
                topics,
                partitions,
                list(map(_OFFSET, group)),
                _Keys(group),
            )
            by_task[task] = events
            dead.extend(rejected)
        internal = sum(n for t, n in topic_counts.items() if self.names.is_repartition(t))
        stats.records_in += len(records) - internal
        stats.repartitioned_in += internal
        alerts: list[Alert] = []
        for task, events in by_task.items():
            if task in framed:
                engine_alerts, refused, copies = framed[task]
                alerts.extend(engine_alerts)
                dead.extend(map(rejected_dead_letter, refused))
                if copies is not None:  # in task order, as judge_events ships
                    if now is not None:
                        self._shipping({first_tp[task]}, copies[2], now)
                    self._ship_raw(*copies)
                continue
            engine_alerts, engine_dead = self.judge_events(task, events, now)
            alerts.extend(engine_alerts)
            dead.extend(engine_dead)
        if now is not None:
            alerts.extend(self.advance_idle(now, exclude=by_task, source_kind=source_kind))
        dead.extend(self._take_late(source_kind))
        for dl in dead:
            stats.dead_by_reason[dl.reason] = stats.dead_by_reason.get(dl.reason, 0) + 1
            if dl.reason == "late":
                stats.late += 1
        stats.dead_letters += len(dead)
        self._count_alerts(alerts)
        if self.metrics is not None:
            if source_kind == "mqtt":
                topic_counts, dead_labels = self._per_binding(topic_counts, dead)
            else:
                dead_labels = None
            self._report(topic_counts, dead, alerts, dead_labels)
        return alerts, dead

    def judge_events(
        self,
        task: TaskId,
        events: list[Event],
        now: float | None = None,
        raws: dict[tuple[str, int, int], bytes] | None = None,
    ) -> tuple[list[Alert], list[DeadLetter]]:
        """Judge one task's decoded events, in the order given; returns (alerts, dead
        letters of the events its engine rejected: late, future, time_jump, some perhaps
        held from an earlier batch). Repartitioned copies are queued (``take_outbox``).
        ``raws``: (topic, partition, offset) -> the record as it arrived, for those the
        caller still holds (a dead letter of any other carries its decoded fields)."""
        engine = self.engine(task)
        progress: list[Event] = []
        if self.bindings[task[0]].format == "internal":
            progress = [ev for ev in events if ev.data is SOURCE_PROGRESS]
            if progress:
                events = [ev for ev in events if ev.data is not SOURCE_PROGRESS]
                # ``judge`` counted every record of the repartition topic as a copy
                self.stats.repartitioned_in -= len(progress)
                self.stats.progress_marks_in += len(progress)
            events = self._dedup_repartitioned(engine, events)
        else:
            self.stats.events += len(events)
        alerts, refused = engine.process(events, now, progress)
        dead: list[DeadLetter] = []
        targets = self.repartition_targets.get(task[0])
        if targets:
            if events and now is not None:
                self._shipping(
                    {(task[1], task[2])} if task[1] else {(e.topic, e.partition) for e in events},
                    targets,
                    now,
                )
            future = {id(r.event) for r in refused if r.reason == "future"}
            # a record from the future is dead-lettered here, once: not shipped
            dead.extend(
                self._ship(
                    task,
                    [ev for ev in events if id(ev) not in future] if future else events,
                    targets,
                )
            )
        if raws is None:
            dead.extend(map(rejected_dead_letter, refused))
        else:
            dead.extend(
                rejected_dead_letter(
                    r, raws.get((r.event.topic, r.event.partition, r.event.offset))
                )
                for r in refused
            )
        return alerts, dead

    def _judge_columns(
        self,
        task: TaskId,
        group: list[Any],
        tp: tuple[str, int],
        now: float | None,
        dead: list[DeadLetter],
    ) -> tuple[list[Alert], list[Rejected], _FramedCopies | None] | None:
        """Judge one task's records from their columns (``DetectorEngine.process_frame``):
        (alerts, rejected, the copies to ship if the binding re-keys its records), or None
        when the per-event path must: the engine's detectors do not all say which
        records matter to them as a column expression, the binding's re-keyed copies cannot
        be written from the records as they came (``_ships_raw``), or the batch or its times
        are not ones a frame judges exactly."""
        reader = self.frames[task[0]]
        engine = self.engine(task)
        if reader is None or len(group) < MIN_FRAME or not engine.takes_frames():
            return None
        values = list(map(_VALUE, group))
        targets = self.repartition_targets.get(task[0])
        if targets and not self._ships_raw(task[0], values):
            return None
        frame = reader.read(values)
        if frame is None:
            return None
        decoder = self.decoders[task[0]]
        decode = decoder.record.decode
        vouched = decoder.record.vouched
        times = frame.ts

        def materialize(rows: list[int]) -> list[Event]:
            out: list[Event] = []
            for i in rows:
                r = group[i]
                # the frame checked its keys, shape, size and time: only its fields'
                # checks (which coerce) run again
                got: Any = vouched(r.value, float(times[i]), r.topic, r.partition, r.offset)
                if got is None:
                    got = decode(r.value, r.topic, r.partition, r.offset, r.key)
                if type(got) is not Event:
                    # the frame's checks fell short of the decoder's (a bug): the record was
                    # judged as the frame read it, and is dead-lettered too, so seen twice
                    # rather than never
                    self.frame_strays += 1
                    log.error(
                        "a record read into columns was refused by its decoder "
                        "(%s at %s[%d] offset %d): judged as read, and dead-lettered",
                        got.reason,
                        r.topic,
                        r.partition,
                        r.offset,
                    )
                    dead.append(got)
                    got = Event(
                        decoder.family,
                        frame.ts[i],
                        frame.row(i),
                        r.topic,
                        r.partition,
                        r.offset,
                    )
                out.append(got)
            return out

        out = engine.process_frame(
            frame, tp[0], tp[1], materialize, now, offsets=lambda: list(map(_OFFSET, group))
        )
        if out is None:
            return None
        return (*out, (group, frame, targets, task) if targets else None)

    def _ships_raw(self, binding: str, values: list[bytes | None]) -> bool:
        """Whether a frame's records of ``binding`` can be shipped to its repartition topics
        as they came (``_ship_raw``): the record, parsed, must be the Event's ``data``, which
        holds for every record a frame takes but an integer in a number field (the decoder
        makes it a float); and every copy must fit a repartition record however its Event
        would encode, as ``_ship`` dead-letters one that does not. Re-encoding grows only
        floats, each at most 4.5 times (``1e15`` is ``1000000000000000.0``; strings,
        integers and the rest come back as long or shorter), so a record of a fifth of the
        room fits either way. (A None, a tombstone: no frame takes its batch.) A binding with
        a field mapping never: its Event's ``data`` is the mapped record."""
        decoder = self.decoders[binding].record
        if decoder.mapping is not None:
            return False
        contract = decoder.contract
        if any(f.type == "number" for f in contract.fields.values()):
            return False
        try:
            longest = max(map(len, values))  # type: ignore[arg-type]
        except TypeError:
            return False
        return 5 * longest + 512 <= MAX_INTERNAL_RECORD_BYTES - MAX_KEY_BYTES

    def _ship_raw(
        self,
        group: list[Any],
        frame: RecordFrame,
        targets: list[tuple[str, str]],
        task: TaskId,
    ) -> None:
        """``_ship`` for a batch (of one source partition) judged from its columns: each copy
        written around the record as it came (``repartition.encode_raw``: the same Event once
        decoded), with no Event made; the records a target's filter passes, by its column
        expressions (``_ship_filter``), then the batch's progress mark."""
        from .repartition import encode_raw

        outbox = self.outbox
        stamps = frame.ts.tolist()
        values: dict[int, bytes] = {}
        marks: list[bytes] | None = None  # the batch's, made once for every target
        for key_field, topic in targets:
            column = frame.column(key_field)
            picks = self._ship_filter(task[0], key_field)
            if picks is None:
                rows: Any = range(len(group))
            else:
                chosen: set[int] = set()
                for select in picks[1]:
                    chosen.update(frame.where(select))
                rows = sorted(chosen)
            for i in rows:
                value = values.get(i)
                if value is None:
                    r = group[i]
                    value = values[i] = encode_raw(
                        stamps[i], r.value, r.topic, r.partition, r.offset
                    )
                outbox.append((topic, _copy_key(column[i]), value))
            if picks is not None and group:
                if marks is None:
                    last = group[-1]
                    oldest = float(frame.ts.min())
                    marks = self._marks(task, {(last.topic, last.partition): (last.offset, oldest)})
                self._queue_marks(topic, marks)

    def _ship_filter(self, binding: str, field: str) -> _ShipFilter | None:
        """What the detectors on ``binding``'s repartition topic by ``field`` can use
        (``repartition.ship_filter``; None: every record is shipped), made once (a reload
        makes it again)."""
        key = (binding, field)
        if key not in self._ship_filters:
            from .repartition import internal_name, ship_filter

            internal = self.bindings.get(internal_name(binding, field))
            self._ship_filters[key] = (
                None
                if internal is None
                else ship_filter(self.config, internal, self.kinds.get(internal.name))
            )
        return self._ship_filters[key]

    def _per_binding(
        self, topic_counts: dict[str, int], dead: list[DeadLetter]
    ) -> tuple[dict[str, int], list[str]]:
        """MQTT metrics are labelled by the binding's topic filter, not by topic: every
        device publishing under its own topic would otherwise be a series of its own."""

        def label(topic: str) -> str:
            b = self.binding_for("mqtt", topic)
            return "(unbound)" if b is None else b.mqtt_topic or b.name

        counts: dict[str, int] = {}
        for topic, n in topic_counts.items():
            key = label(topic)
            counts[key] = counts.get(key, 0) + n
        return counts, [label(dl.topic) for dl in dead]

    def _count_alerts(self, alerts: list[Alert]) -> None:
        stats = self.stats
        stats.alerts += len(alerts)
        for a in alerts:
            stats.alerts_by_kind[a.kind] = stats.alerts_by_kind.get(a.kind, 0) + 1

    def tick(self, now: float, source_kind: str | None = None) -> list[Alert]:
        """No records came: advance idle tasks (timers, held repartitioned records) of
        ``source_kind`` (None: all) and count what that fired, as ``judge`` does for a batch.
        What it rejected waits in ``take_rejected``."""
        alerts = self.advance_idle(now, source_kind=source_kind)
        self._count_alerts(alerts)
        if self.metrics is not None and alerts:
            self._report({}, [], alerts)
        return alerts

    def take_rejected(self, source_kind: str | None = None) -> list[DeadLetter]:
        """The dead letters of records that engines of ``source_kind`` (None: all) rejected
        outside a batch of their own (the clock, a caught-up partition, a quiet source of a
        repartitioned task let them go on a tick), counted as ``judge`` counts a batch's.
        The caller writes them to the dead-letter sink of that source before the checkpoint
        that no longer holds them."""
        dead = self._take_late(source_kind)
        stats = self.stats
        for dl in dead:
            stats.dead_by_reason[dl.reason] = stats.dead_by_reason.get(dl.reason, 0) + 1
            if dl.reason == "late":
                stats.late += 1
        stats.dead_letters += len(dead)
        if self.metrics is not None and dead:
            labels = self._per_binding({}, dead)[1] if source_kind == "mqtt" else None
            self._report({}, dead, [], labels)
        return dead

    def _take_late(self, source_kind: str | None) -> list[DeadLetter]:
        dead: list[DeadLetter] = []
        for task, engine in self.engines.items():
            if engine.rejected_later and (
                source_kind is None or self._kind_of(task) == source_kind
            ):
                dead.extend(map(rejected_dead_letter, engine.take_late()))
        return dead

    def _ship(
        self, task: TaskId, events: list[Event], targets: list[tuple[str, str]]
    ) -> list[DeadLetter]:
        """Queue the events' repartitioned copies, to each target those its filter passes
        (``_ship_filter``; then, where one did, a progress mark of each source partition);
        returns the dead letters of those whose copy would not fit one Kafka record
        (``batches.MAX_INTERNAL_RECORD_BYTES``): the default max_record_bytes leaves room for
        the envelope and the key, but decoding and encoding again can grow a record (1e5 is
        written back as 100000.0)."""
        from .repartition import encode

        outbox = self.outbox
        dead: list[DeadLetter] = []
        max_value = MAX_INTERNAL_RECORD_BYTES - MAX_KEY_BYTES
        # each event encoded once, for whichever targets take it (None: too large)
        values: dict[int, bytes | None] = {}
        marks: list[bytes] | None = None  # the batch's, made once for every target
        for key_field, topic in targets:
            picks = self._ship_filter(task[0], key_field)
            if picks is None:
                chosen: Any = events
            else:
                passes = picks[0]
                chosen = [ev for ev in events if passes(ev.data)]
            for ev in chosen:
                if id(ev) in values:
                    value = values[id(ev)]
                else:
                    value = encode(ev)
                    if len(value) > max_value:
                        dead.append(_unshippable(ev, len(value), max_value, targets))
                        value = None
                    values[id(ev)] = value
                if value is not None:
                    outbox.append((topic, _copy_key(ev.data.get(key_field)), value))
            if picks is not None and events:
                if marks is None:
                    # each source's last offset, and its oldest time (for a source with no
                    # stream time yet)
                    seen: dict[tuple[str, int], tuple[int, float]] = {}
                    for ev in events:
                        src = (ev.topic, ev.partition)
                        offset, oldest = seen.get(src, (ev.offset, ev.ts))
                        seen[src] = (max(offset, ev.offset), min(oldest, ev.ts))
                    marks = self._marks(task, seen)
                self._queue_marks(topic, marks)
        return dead

    def _queue_marks(self, topic: str, marks: list[bytes]) -> None:
        """Queue progress marks to every partition of ``topic`` (``_marks``)."""
        self.outbox.extend((topic, EVERY_PARTITION, mark) for mark in marks)
        self._outbox_marks += len(marks)

    def _marks(
        self, task: TaskId, sources: dict[tuple[str, int], tuple[int, float]]
    ) -> list[bytes]:
        """A progress mark of each source partition in ``sources`` ((the last offset shipped
        from, the oldest time of the batch)), for every partition of a repartition topic: the
        source's stream time as its task judged it, not the newest time its records said (a
        forged time, held or dead-lettered there, would open every merge on the topic at
        once). A source with no stream time yet (its first records are judged as they come,
        detectors/engine.py) says the oldest time of the batch: no more than its copies, all
        shipped, would have told a merge, which otherwise waits for a source it has heard
        nothing of."""
        from .repartition import encode_mark

        engine = self.engine(task)
        marks = []
        for (src_topic, src_partition), (offset, oldest) in sources.items():
            ts = engine.partition_time((src_topic, src_partition))
            if ts == float("-inf"):
                ts = oldest
            marks.append(encode_mark(ts, src_topic, src_partition, offset))
        return marks

    def _shipping(
        self, sources: set[tuple[str, int]], targets: list[tuple[str, str]], now: float
    ) -> None:
        """Source partitions judged here ship copies now: the merges reading them count them
        heard from now, not only once its copies arrive. What a merge knows of its own input
        (the high watermark of its last fetch) can lag what was produced to it; a source
        that is shipping is not quiet, wherever its copies are."""
        topics = {t for _, t in targets}
        for task, engine in self.engines.items():
            if engine.merge is not None and task[1] in topics:
                for src in sources:
                    engine.merge.heard_of(src, now)

    @staticmethod
    def _dedup_repartitioned(engine: DetectorEngine, events: list[Event]) -> list[Event]:
        """Drop repartitioned records this task has judged already: a crash between producing
        them and checkpointing the source makes the source task produce them again."""
        seen = engine.src_offsets
        out = []
        for ev in events:  # coordinates are the original record's (see decode/records.py)
            k = (ev.topic, ev.partition)
            if ev.offset <= seen.get(k, -1):
                continue
            seen[k] = ev.offset
            out.append(ev)
        return out

    def take_outbox(self) -> list[tuple[str, Any, bytes]]:
        out, self.outbox = self.outbox, []
        self.stats.repartitioned_out += len(out) - self._outbox_marks
        self.stats.progress_marks_out += self._outbox_marks
        self._outbox_marks = 0
        return out

    def advance_idle(
        self, now: float, exclude: Any = (), source_kind: str | None = None
    ) -> list[Alert]:
        """Advance the tasks that got nothing: each to the low watermark of its binding's
        active tasks, so timers (silent hosts, SLA deadlines) in a quiet partition still fire
        when the rest of the stream moves on. Only tasks of ``source_kind`` (None: all): a
        source's loop moves its own tasks, so what they reject leaves through its sink.

        A binding none of whose tasks is active, every one of them caught up with nothing
        held (``DetectorEngine.drained``), has judged all there is: its tasks move to its
        largest stream time, as at the end of a replay. (Sparse streams: a repartitioned
        task that saw one ticket of a source partition fires that ticket's timers by the
        time of the binding's last ticket, not of its own.)"""
        floors: dict[str, float] = {}
        ends: dict[str, float | None] = {}  # binding -> largest stream time while drained
        for task, engine in self.engines.items():
            if source_kind is not None and self._kind_of(task) != source_kind:
                continue
            name = task[0]
            st = engine.stream_time()
            if now - engine.active_since() <= self.idle_after:
                if st > float("-inf"):
                    floors[name] = min(floors.get(name, st), st)
                ends[name] = None
            elif name not in ends or ends[name] is not None:
                end, latest = ends.get(name), engine.latest()
                ends[name] = (
                    (latest if end is None else max(end, latest)) if engine.drained(now) else None
                )
        for name, end in ends.items():
            if end is not None and name not in floors:
                floors[name] = end
        alerts: list[Alert] = []
        for task, engine in self.engines.items():
            if task in exclude or (source_kind is not None and self._kind_of(task) != source_kind):
                continue
            floor = floors.get(task[0])
            if floor is not None:
                floor -= engine.allowed_lateness
            alerts.extend(engine.advance(now, floor))
        return alerts

    def _report(
        self,
        topic_counts: dict[str, int],
        dead: list[DeadLetter],
        alerts: list[Alert],
        dead_labels: list[str] | None = None,
    ) -> None:
        m = self.metrics
        dead_by: dict[tuple[str, str], int] = {}
        labels = dead_labels if dead_labels is not None else [dl.topic for dl in dead]
        for topic, dl in zip(labels, dead, strict=True):
            dead_by[(topic, dl.reason)] = dead_by.get((topic, dl.reason), 0) + 1
        for topic, n in topic_counts.items():
            m.records_in.labels(topic).inc(n)
            bad = sum(c for (t, _), c in dead_by.items() if t == topic)
            if n - bad > 0:
                m.records_decoded.labels(topic).inc(n - bad)
        for (topic, reason), n in dead_by.items():
            m.dead_letters.labels(topic, reason).inc(n)
            if reason == "late":
                m.late_events.labels(topic).inc(n)
        for a in alerts:
            m.alerts.labels(a.kind, a.severity).inc()
            m.detector_firings.labels(a.kind).inc()
            source = a.labels.get("rule_source")
            if source is not None:  # a rule file's or a Sigma rule's (rules/)
                m.rule_firings.labels(a.labels.get("rule", ""), source).inc()

    def report_state(self) -> None:
        """Gauges and counters read from detectors (called every few seconds, not per batch)."""
        m = self.metrics
        if m is None:
            return
        sizes: dict[str, int] = {}
        for engine in self.engines.values():
            for d in engine.detectors:
                sizes[d.kind] = sizes.get(d.kind, 0) + d.state_size()
                last = self._last_counts.get(d, (0, 0))
                evals, evictions = d.evaluations, d.evictions
                if evals > last[0]:
                    m.detector_evaluations.labels(d.kind).inc(evals - last[0])
                if evictions > last[1]:
                    m.state_evictions.labels(d.kind).inc(evictions - last[1])
                self._last_counts[d] = (evals, evictions)
        for kind, n in sizes.items():
            m.state_keys.labels(kind).set(n)

    def finish(self) -> list[Alert]:
        """End of input (replays, benches): every watermark to its largest event time.
        Records rejected then (held time jumps that were contradicted) are counted and kept
        in ``final_dead``."""
        alerts: list[Alert] = []
        stats = self.stats
        for task in self.engines:
            task_alerts, dead = self.finish_task(task)
            alerts.extend(task_alerts)
            self.final_dead.extend(dead)
            stats.dead_letters += len(dead)
            for dl in dead:
                stats.dead_by_reason[dl.reason] = stats.dead_by_reason.get(dl.reason, 0) + 1
        return alerts

    def finish_task(self, task: TaskId) -> tuple[list[Alert], list[DeadLetter]]:
        """End of input for one task (``DetectorEngine.finish``): (alerts, dead letters of
        the held records that were contradicted). Not counted in ``stats``."""
        engine = self.engines[task]
        alerts = engine.finish()
        return alerts, list(map(rejected_dead_letter, engine.take_late()))


def _unshippable(
    ev: Event, size: int, max_value: int, targets: list[tuple[str, str]]
) -> DeadLetter:

    raw = orjson.dumps(ev.data, default=str)
    return DeadLetter(
        "too_large",
        f"its repartitioned copy ({size} bytes) is over the "
        f"{max_value} bytes one Kafka record may carry: judged here, "
        f"but not by the detectors of "
        f"{', '.join(topic for _, topic in targets)}; the payload is "
        f"the decoded record",
        raw,
        ev.topic,
        ev.partition,
        ev.offset,
        None,
        ev.family,
    )


def rejected_dead_letter(r: Rejected, raw: bytes | None = None) -> DeadLetter:
    """An event the engine did not judge (late, future, time_jump), as a dead letter: the
    record as it arrived (``raw``) where the caller still holds it, else its decoded fields."""
    ev = r.event
    if raw is None:
        raw = orjson.dumps(ev.data, default=str)
    return DeadLetter(r.reason, r.detail, raw, ev.topic, ev.partition, ev.offset, None, ev.family)


AlertSink = Callable[[list[Alert]], Awaitable[None]]
DeadSink = Callable[[list[DeadLetter]], Awaitable[None]]


class IngestLoop:
    """source -> judge -> durable alerts and dead letters -> commit (or checkpoint)."""

    def __init__(
        self,
        source: Any,
        source_kind: str,
        judge: Judge,
        append_alerts: AlertSink,
        write_dead: DeadSink,
        *,
        on_batch: Callable[[int], None] | None = None,
        progress: Any = None,
    ) -> None:
        self.source = source
        self.source_kind = source_kind
        self.judge = judge
        self.append_alerts = append_alerts
        self.write_dead = write_dead
        self.on_batch = on_batch
        self.progress = progress  # checkpoints state + offsets; None: commit every batch
        self.producer: Any = None  # for repartitioned records
        self.writer: BatchWriter | None = None
        self.alignment: Alignment | None = None
        self.stopping = False
        self.batches = 0
        # a batch judged but not yet durable and observed: a snapshot taken now would hold
        # effects of records that a restart reads again
        self.unsettled = False

    async def run(self) -> None:
        while not self.stopping:
            batch = await self.source.next_batch(timeout=0.5)
            if batch is None:
                alerts = self.judge.tick(time.time(), self.source_kind)
                # records the tick rejected are no longer in any task's state: durable
                # before a checkpoint (here or on stop) can leave them out
                dead = self.judge.take_rejected(self.source_kind)
                if alerts or dead:
                    self.unsettled = True
                    await self._make_durable(alerts, dead, [])
                    self.unsettled = False
                if self.progress is not None:
                    await self.progress.maybe_checkpoint(idle=True)
                continue
            self.unsettled = True
            try:
                alerts, dead = self.judge.judge(
                    batch.records, self.source_kind, time.time(), batch.runs
                )
                # Durable first (alerts, dead letters, repartitioned records), then commit.
                outbox = self.judge.take_outbox()
                await self._make_durable(alerts, dead, outbox)
                if self.progress is None:
                    await self.source.commit(batch)
                else:
                    self.progress.observe(batch)
                    self.unsettled = False
                    await self.progress.maybe_checkpoint()
            finally:
                self.source.done(batch)
            self.unsettled = False
            self.batches += 1
            if self.alignment is not None:
                self.alignment.after_batch(batch)
            if self.on_batch is not None:
                self.on_batch(len(batch.records))

    async def _make_durable(
        self,
        alerts: list[Alert],
        dead: list[DeadLetter],
        outbox: list[tuple[str, Any, bytes]],
    ) -> None:
        """Write the batch's effects; while the broker is unreachable, keep retrying (with
        backoff) rather than crash: nothing is committed until this returns, and what a retry
        writes twice is deduplicated downstream (fingerprints, source offsets)."""
        backoff = Backoff()
        while True:
            try:
                if outbox:
                    await asyncio.gather(
                        self.append_alerts(alerts), self.write_dead(dead), self.produce(outbox)
                    )
                else:
                    await asyncio.gather(self.append_alerts(alerts), self.write_dead(dead))
                return
            except (KafkaError, OSError) as exc:
                if (self.stopping and backoff.delay > 4) or backoff.delay >= backoff.cap:
                    # about a minute without a broker: fail loudly (the supervisor or the
                    # orchestrator restarts us; nothing was committed)
                    raise
                log.warning(
                    "cannot write alerts/dead letters (%s); retrying in %.1fs, "
                    "offsets stay uncommitted",
                    type(exc).__name__,
                    backoff.delay,
                )
                await backoff.wait()

    async def produce(self, records: list[tuple[str, Any, bytes]]) -> None:
        """Produce repartitioned records and wait for the broker's acknowledgement."""
        if self.writer is None or self.writer.producer is not self.producer:
            self.writer = BatchWriter(self.producer)
        await asyncio.gather(*await self.writer.write(records))


class Alignment:
    """Keep a consumer's source partitions within ``slack`` seconds of event time of each other.

    A consumer catching up on a backlog reads its partitions at different speeds: one can be
    hours of event time ahead of another. Each partition is in order on its own, so per-task
    detectors do not care; but records re-keyed through a repartition topic (password_spray
    counts one address's failures across every username partition) arrive there interleaved
    from all partitions, out of order by that skew, and a 10-minute window cannot see an
    incident spread over partitions hours apart. So, as Flink's watermark alignment does:

        partition 0  ====================>|  stream time 10:40   ahead by > slack: PAUSED
        partition 1  ===========>|           stream time 10:05   (the slowest)
        partition 2  ==============>|        stream time 10:20
                                 |<-slack->|

    A partition that has delivered nothing for ``idle_after`` seconds (caught up, or empty)
    does not hold the others back. Repartition topics are never paused (they are downstream).
    """

    def __init__(
        self, source: PartitionedSource, judge: Judge, slack: float, idle_after: float = 5.0
    ) -> None:
        self.source = source
        self.judge = judge
        self.slack = slack
        self.idle_after = idle_after
        self.last_data: dict[Any, float] = {}
        self.paused: set[Any] = set()
        self.suspended = False  # the memory guard owns pausing while it holds

    def after_batch(self, batch: Any) -> None:
        if self.suspended or self.slack <= 0:
            return
        now = time.monotonic()
        for tp in batch.ack:
            self.last_data[tp] = now
        # Aligned per binding that feeds a repartition topic: other topics' event times
        # (business metrics span months, auth logs hours) are none of its business.
        groups: dict[str, dict[Any, float]] = {}
        for tp in self.source.assignment():
            name = self.judge.repartitioned_binding(tp.topic)
            if name is not None:
                st = self.judge.stream_time_of(tp.topic, tp.partition)
                if st > float("-inf"):
                    groups.setdefault(name, {})[tp] = st
        ahead: set[Any] = set()
        for times in groups.values():
            active = [
                st
                for tp, st in times.items()
                if tp in self.paused or now - self.last_data.get(tp, 0.0) < self.idle_after
            ]
            if active:
                floor = min(active)
                ahead.update(tp for tp, st in times.items() if st > floor + self.slack)
        to_pause = ahead - self.paused
        to_resume = self.paused - ahead
        if to_pause:
            self.source.pause_partitions(to_pause)
        if to_resume:
            self.source.resume_partitions(to_resume)
        if to_pause or to_resume:
            log.debug("alignment: paused %d, resumed %d partitions", len(to_pause), len(to_resume))
        self.paused = ahead

    def forget(self, tps: list[Any]) -> None:
        for tp in tps:
            self.paused.discard(tp)
            self.last_data.pop(tp, None)


class KafkaProgress:
    """Where each assigned partition stands, and the checkpoint-then-commit step
    (see state.py for the protocol and what a crash at each step leaves behind)."""

    def __init__(
        self, source: PartitionedSource, checkpointer: Any, judge: Judge, interval: float
    ) -> None:
        self.source = source
        self.checkpointer = checkpointer
        self.judge = judge
        self.interval = interval
        self.positions: dict[Any, int] = {}
        self.dirty: set[Any] = set()
        self.last = time.monotonic()
        source.revoke_hooks.append(self.on_revoked)
        source.assign_hooks.append(self.on_assigned)

    def observe(self, batch: Any) -> None:
        self.positions.update(batch.ack)
        self.dirty.update(batch.ack)

    async def maybe_checkpoint(self, idle: bool = False) -> None:
        if not self.dirty or time.monotonic() - self.last < self.interval:
            return
        try:
            if idle:
                # between batches but not holding the batch lock: take it, so a rebalance
                # cannot interleave with the checkpoint
                async with self.source.batch_lock:
                    await self.checkpoint()
            else:
                await self.checkpoint()
        except (KafkaError, OSError) as exc:
            # Nothing was committed: the previous checkpoint still stands, and the next
            # interval tries again. A crash meanwhile only means a longer re-read.
            self.last = time.monotonic()
            log.warning(
                "checkpoint failed (%s); the previous one stands, retrying in %.0fs",
                type(exc).__name__,
                self.interval,
            )

    async def checkpoint(self, tps: Any = None) -> None:
        todo = {
            tp: self.positions[tp]
            for tp in (tps if tps is not None else self.dirty)
            if tp in self.positions and tp in self.dirty
        }
        self.last = time.monotonic()
        if not todo:
            return
        offsets = await self.checkpointer.checkpoint(todo)
        await self.source.commit_offsets(offsets)
        self.dirty.difference_update(offsets)

    async def on_revoked(self, revoked: list[Any]) -> None:
        try:
            await self.checkpoint([tp for tp in revoked if tp in self.dirty])
        except Exception as exc:  # noqa: BLE001 - the next owner re-reads from the last one
            log.error(
                "checkpoint on revoke failed (%s): the next owner re-reads from the "
                "previous checkpoint",
                exc,
            )
        for tp in revoked:
            self.judge.drop_tasks(tp.topic, tp.partition)
            self.positions.pop(tp, None)
            self.dirty.discard(tp)

    async def on_assigned(self, assigned: list[Any]) -> None:
        tps = sorted(assigned)
        await self.checkpointer.ensure_changelogs(
            {tp.topic: self.source.partitions_for(tp.topic) for tp in tps}
        )
        # state from a previous owner (or an earlier life of this one), then resume at
        # exactly the offset that state is exact for
        for tp in tps:
            self.judge.drop_tasks(tp.topic, tp.partition)
        for tp, offset in (await self.checkpointer.restore_all(tps)).items():
            if offset is not None:
                self.source.seek(tp, offset)


class DeliveryLoop:
    """alert log -> notify/ -> (active alerts) -> ack the alert log."""

    def __init__(
        self,
        reader: Any,
        notifier: Any,
        stats: Stats,
        accepted: Callable[[list[Alert]], Awaitable[None]] | None = None,
    ) -> None:
        self.reader = reader
        self.notifier = notifier
        self.stats = stats
        self.accepted = accepted  # told of every batch notify/ accepted (notify/active.py)
        self.stopping = False
        self.idle = asyncio.Event()

    async def run(self) -> None:
        while not self.stopping:
            alerts, token = await self.reader.read(500, 0.3)
            if not alerts:
                self.idle.set()
                if token:
                    await self.reader.ack(token)
                continue
            self.idle.clear()
            await self.notifier.submit(alerts)
            if self.accepted is not None:
                await self.accepted(alerts)
            await self.reader.ack(token)
            self.stats.delivered_batches += 1
            self.stats.alerts_submitted += len(alerts)


def compile_subscription(
    bindings: list[Binding],
    internal: Sequence[Binding] = (),
    app: str = "streamproc",
    dlq_suffix: str = ".dlq",
) -> tuple[list[str], str | None]:
    """Kafka subscription for the bindings: plain names, or one regex if any uses a pattern.

    Internal topics (``<application_id>.*``, ``streamproc.*`` of earlier versions, dead-letter
    topics ``*<dlq_suffix>``) are never matched by a user pattern; the repartition topics
    this config feeds are subscribed by name.
    """
    names = [b.topic for b in bindings if b.topic is not None]
    inner = [b.topic for b in internal if b.topic is not None]
    patterns = [b.pattern for b in bindings if b.pattern is not None]
    if not patterns:
        return sorted(set(names) | set(inner)), None
    parts = [re.escape(n) for n in names] + [f"(?:{p})" for p in patterns]
    dlq = rf"(?!.*{re.escape(dlq_suffix)}$)" if dlq_suffix else ""
    user = rf"(?!{re.escape(app)}\.)(?!streamproc\.){dlq}(?:" + "|".join(parts) + ")"
    alternatives = [user] + [re.escape(t) for t in inner]
    return [], "^(?:" + "|".join(alternatives) + ")$"


class Runtime:
    """Starts sources, the alert log, delivery and notify for one config; stops them in order.

    Shutdown (SIGTERM, SIGINT, ``stop()``): ingest loops finish the batch in flight (judged,
    made durable, committed), sources leave their groups, delivery drains what is already in
    the alert log for up to ``drain_timeout`` seconds, notify/ persists what it still holds,
    and the producer flushes. Whatever delivery did not finish stays in the alert log and is
    delivered after the next start.
    """

    def __init__(
        self,
        config: Config,
        *,
        notifier: Any = None,
        alerts_file: str | None = None,
        console: bool = False,
        max_events: int | None = None,
        exit_when_idle: float | None = None,
        drain_timeout: float = 5.0,
        worker: int | None = None,
        start_retries: int | None = None,
        notify_overrides: dict[str, Any] | None = None,
        metrics: Any = None,
        max_memory: int | None = None,
        startup: Startup | None = None,
        serve_alerts: bool = False,
    ) -> None:
        self.config = config
        # read the deployment's active alerts (the Alertmanager API serves them); every
        # runtime writes them, for the workers that serve
        self.serve_alerts = serve_alerts
        self.active_alerts: ActiveAlerts | None = None  # set once started
        # `streamproc run` passes its own (from the process start); otherwise from here
        self.startup = startup or Startup(started=time.time())
        self.max_memory = max_memory
        self.paused = False
        self.metrics = metrics
        self.notifier = notifier
        self.alerts_file = alerts_file
        self.console = console
        self.max_events = max_events
        self.exit_when_idle = exit_when_idle
        self.drain_timeout = drain_timeout
        self.worker = worker
        self.start_retries = start_retries
        self.notify_overrides = notify_overrides or {}
        self.judge = Judge(
            config, metrics=metrics, repartition=config.kafka is not None, clock=time.time
        )
        self.stats = self.judge.stats
        self.sources: list[Any] = []
        self.ingest: list[IngestLoop] = []
        self.delivery: DeliveryLoop | None = None
        self.producer: Any = None
        self.alert_log: Any = None
        self.reader: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self.checkpointer: Any = None
        self.file_checkpointer: Any = None
        self._state_file_due = False  # the interval passed while a batch was in flight
        self.progress: KafkaProgress | None = None
        self.alignment: Alignment | None = None
        self.ready = False
        # set once every source is started and its ingest loop runs: judging begins, while
        # delivery's side may still be starting (the demo feeds its samples from here)
        self.consuming = asyncio.Event()
        self.started_at = time.time()

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        tune_gc()
        cfg = self.config
        kafka_bindings = cfg.kafka_bindings if cfg.kafka is not None else []
        mqtt_bindings = cfg.mqtt_bindings if cfg.mqtt is not None else []
        if cfg.kafka is not None:
            from aiokafka import AIOKafkaProducer

            from ..storage.alertlog import KafkaAlertLog, KafkaAlertReader
            from ..storage.dlq import KafkaDeadLetters
            from .batches import DEFAULT_MAX_REQUEST_SIZE

            # batches of up to 256 KiB: the alert log and repartition topics are written a
            # judged batch at a time (batches.py), not a record at a time
            self.producer = AIOKafkaProducer(
                **cfg.kafka.client_kwargs(),
                acks="all",
                linger_ms=5,
                client_id=cfg.kafka.client_id,
                max_batch_size=256 * 1024,
                max_request_size=DEFAULT_MAX_REQUEST_SIZE,
            )
            self.startup.begin("topics")
            await self._start_with_retry(self.producer.start, "Kafka producer")
            await self._ensure_internal_topics()
            self.startup.end("topics")
            self.alert_log = KafkaAlertLog(cfg.kafka, self.producer)
            kafka_dead = KafkaDeadLetters(
                self.producer,
                cfg.kafka.dlq_suffix,
                max_request_size=DEFAULT_MAX_REQUEST_SIZE,
                metrics=self.metrics,
            )
            self.reader = KafkaAlertReader(cfg.kafka, exclusive=cfg.kafka.embedded)
        else:
            from ..storage.alertlog import SqliteAlertLog

            self.alert_log = SqliteAlertLog(cfg.state_dir / "alerts.sqlite3")
            self.reader = self.alert_log
        # Delivery's side (notify/ with its shared tables, the alert-log reader) starts while
        # the sources join and restore: judging needs none of it, only the alert log.
        delivery_side = asyncio.create_task(self._start_delivery_side(), name="notify-start")
        self._tasks.append(delivery_side)

        if kafka_bindings and cfg.kafka is not None:  # always so with bindings; narrows the type
            from ..sources.kafka import KafkaSource

            topics, pattern = compile_subscription(
                kafka_bindings,
                self.judge.internal,
                cfg.kafka.topics.app,
                cfg.kafka.dlq_suffix,
            )
            source = KafkaSource(
                cfg.kafka,
                topics=topics,
                pattern=pattern,
                start_retries=self.start_retries,
                exclusive=cfg.kafka.embedded,
            )
            progress = None
            if cfg.checkpoints:
                from ..storage.checkpoints import KafkaCheckpointer

                self.checkpointer = KafkaCheckpointer(cfg.kafka, self.judge)
                await self.checkpointer.start()
                progress = self.progress = KafkaProgress(
                    source, self.checkpointer, self.judge, cfg.checkpoint_interval
                )
            self.judge.partitions_of = source.partitions_for
            self.judge.source_behind = source.behind
            self.judge.source_caught_up = source.caught_up
            self._time_assignment(source)
            self.startup.begin("group_join")
            if any(reader is not None for reader in self.judge.frames.values()):
                import_numpy_meanwhile()
            await source.start()
            self.sources.append(source)
            loop = IngestLoop(
                source,
                "kafka",
                self.judge,
                self.alert_log.append,
                kafka_dead.write,
                on_batch=self._count,
                progress=progress,
            )
            loop.producer = self.producer
            if self.judge.internal and cfg.kafka.max_partition_skew > 0:
                # only repartitioned detectors see partitions interleaved: align then
                loop.alignment = Alignment(source, self.judge, cfg.kafka.max_partition_skew)
                self.alignment = loop.alignment

                async def forget(tps: list[Any], alignment: Alignment = loop.alignment) -> None:
                    alignment.forget(tps)

                source.revoke_hooks.append(forget)
            self.ingest.append(loop)
        if mqtt_bindings and cfg.mqtt is not None:  # always so with bindings; narrows the type
            from ..sources.mqtt import MqttSource
            from ..storage.dlq import FileDeadLetters

            if cfg.checkpoints:
                from ..storage.checkpoints import FileCheckpointer

                suffix = "" if self.worker is None else f"-{self.worker}"
                self.file_checkpointer = FileCheckpointer(
                    cfg.state_dir / f"mqtt-state{suffix}.snapshot", self.judge
                )
                if self.file_checkpointer.load():
                    log.info("restored MQTT detector state from %s", self.file_checkpointer.path)
                self._tasks.append(
                    asyncio.create_task(self._file_checkpoints(), name="file-checkpoints")
                )
            filters = sorted({b.mqtt_topic for b in mqtt_bindings if b.mqtt_topic})
            if any(b.family == "host-metrics" for b in mqtt_bindings):
                from ..sources.mqtt import STATUS_FILTER

                filters.append(STATUS_FILTER)  # agents' Last Wills: host_silent at once
            mqtt_source = MqttSource(
                cfg.mqtt,
                filters,
                worker=self.worker,
                start_retries=self.start_retries,
            )
            if self.file_checkpointer is not None:
                # the retained payloads the restored state has seen: not judged again
                mqtt_source.restore_retained_digests(self.file_checkpointer.retained)
                self.file_checkpointer.source = mqtt_source
            await mqtt_source.start()
            self.sources.append(mqtt_source)
            mqtt_dead = FileDeadLetters(
                cfg.mqtt.dead_letter_file,
                metrics=self.metrics,
            )
            self.ingest.append(
                IngestLoop(
                    mqtt_source,
                    "mqtt",
                    self.judge,
                    self.alert_log.append,
                    mqtt_dead.write,
                    on_batch=self._after_mqtt_batch,
                )
            )
        if not self.sources:
            from ..errors import ConfigError

            raise ConfigError(
                "no topic binding has a configured source",
                file=cfg.file,
                hint="configure kafka: or mqtt:, or bind topics with source: kafka|mqtt",
            )
        for loop in self.ingest:
            self._tasks.append(asyncio.create_task(loop.run(), name=f"ingest-{loop.source_kind}"))
        self.consuming.set()
        await delivery_side
        self.delivery = DeliveryLoop(
            self.reader,
            self.notifier,
            self.stats,
            accepted=self.active_alerts.record if self.active_alerts is not None else None,
        )
        self._tasks.append(asyncio.create_task(self.delivery.run(), name="delivery"))
        if self.max_memory:
            self._tasks.append(
                asyncio.create_task(self._memory_guard(self.max_memory), name="memory-guard")
            )
        if self.metrics is not None:
            self._tasks.append(asyncio.create_task(self._report_loop(), name="metrics"))
            self.metrics.set_ready("sources", True)
            self.metrics.set_ready("state", True)
        self.ready = True

    async def _start_delivery_side(self) -> None:
        self.startup.begin("notify")
        if self.notifier is None:
            # Apprise with its plugins is about 0.3 s of imports: in a thread, so that the
            # sources join, restore and judge meanwhile instead of waiting for it
            from ..notify.channels import load_apprise

            await asyncio.to_thread(load_apprise)
            self.notifier = self._make_notifier()
        if self.metrics is not None and hasattr(self.notifier, "on_delivery"):
            self.notifier.on_delivery = self.metrics.record_delivery
        if self.metrics is not None and hasattr(self.notifier, "on_dead_letter"):
            self.notifier.on_dead_letter = self.metrics.record_notify_dead_letters
        await self.notifier.start()
        await self.reader.start()
        await self._start_active_alerts()
        self.startup.end("notify", metrics=self.metrics)

    async def _start_active_alerts(self) -> None:
        """The active-alerts table (notify/active.py): shared through a topic with Kafka,
        through the state directory's notify.db without. Only a runtime that serves it reads
        the topic."""
        from ..notify.active import KafkaActiveAlerts, SqliteActiveAlerts
        from ..notify.store import open_db

        timeout = self.config.api.resolve_timeout
        kcfg = self.config.kafka
        table: ActiveAlerts
        if kcfg is not None and self.producer is not None:
            table = KafkaActiveAlerts(kcfg, self.producer, timeout, follow=self.serve_alerts)
        else:
            # the state directory all workers share (a worker's own is <state_dir>/worker-N)
            shared = self.config.state_dir if self.worker is None else self.config.state_dir.parent
            table = SqliteActiveAlerts(open_db(shared), timeout, owns_db=True)
        await table.start()
        self.active_alerts = table
        if self.metrics is not None:
            self.metrics.count_active(lambda: [a.alert.kind for a in table.current()])
            if isinstance(table, KafkaActiveAlerts):
                self.metrics.watch_active_publishing(table)

    def _time_assignment(self, source: Any) -> None:
        """Start-up phases of the first assignment: the group join ends when it arrives, the
        restore (KafkaProgress's hook) when every hook before the first fetch has run."""
        startup = self.startup

        async def joined(assigned: list[Any]) -> None:
            startup.end("group_join")
            startup.begin("restore")

        async def restored(assigned: list[Any]) -> None:
            startup.end("restore", f"{len(assigned)} partitions")
            startup.begin("first_fetch")

        source.assign_hooks.insert(0, joined)
        source.assign_hooks.append(restored)

    async def _memory_guard(self, max_memory: int, interval: float = 1.0) -> None:
        """Above ``max_memory`` (resident set), pause consumption; below 90 % of it, resume.

        Sheds load by leaving records in the broker, never by dropping them. MQTT has no
        fetch to pause: there the bounded source queue pushes back on the client instead,
        and the broker holds what it cannot send (its max_queued_messages).
        """
        import gc

        import psutil

        proc = psutil.Process()
        limit = int(max_memory)
        last_warning = 0.0
        while True:
            rss = proc.memory_info().rss
            if not self.paused and rss > limit:
                gc.collect()
                rss = proc.memory_info().rss
            if not self.paused and rss > limit:
                self.paused = True
                if self.alignment is not None:
                    self.alignment.suspended = True
                for source in self.sources:
                    if hasattr(source, "pause"):
                        source.pause()
                log.warning(
                    "memory %d MiB is over --max-memory %d MiB: consumption paused",
                    rss >> 20,
                    limit >> 20,
                )
                last_warning = time.monotonic()
            elif self.paused and rss < 0.9 * limit:
                self.paused = False
                if self.alignment is not None:
                    self.alignment.suspended = False
                    self.alignment.paused = set()
                for source in self.sources:
                    if hasattr(source, "resume"):
                        source.resume()
                log.info("memory %d MiB: consumption resumed", rss >> 20)
            elif self.paused:
                for source in self.sources:  # partitions assigned since are paused too
                    if hasattr(source, "pause"):
                        source.pause()
                if time.monotonic() - last_warning > 60:
                    log.warning(
                        "consumption still paused: memory %d MiB over %d MiB",
                        rss >> 20,
                        limit >> 20,
                    )
                    last_warning = time.monotonic()
            if self.metrics is not None:
                self.metrics.consumption_paused.set(1 if self.paused else 0)
            await asyncio.sleep(interval)

    async def _file_checkpoints(self) -> None:
        # The state file holds what the detectors have judged; a message is acked once its
        # batch is durable. A file written while a batch is judged and not yet acked would
        # hold messages the broker sends again after a crash (counted twice on restart), so
        # the write waits for every ingest loop to be settled: here when none has a batch in
        # flight, else by the MQTT loop right after its batch is acked (_after_mqtt_batch).
        while True:
            await asyncio.sleep(self.config.checkpoint_interval)
            self._state_file_due = True
            self._write_state_file_if_settled()

    def _after_mqtt_batch(self, n: int) -> None:
        self._count(n)
        if self._state_file_due:
            self._write_state_file_if_settled()

    def _write_state_file_if_settled(self) -> None:
        if any(loop.unsettled for loop in self.ingest):
            return
        self._state_file_due = False
        try:
            self.file_checkpointer.save()
        except OSError as exc:
            log.error("cannot write state file %s: %s", self.file_checkpointer.path, exc)

    async def _report_loop(self, interval: float = 5.0) -> None:
        m = self.metrics
        while True:
            try:
                self.judge.report_state()
                for source in self.sources:
                    lag = getattr(source, "lag", None)
                    if lag is not None:
                        for (topic, partition), n in lag().items():
                            m.consumer_lag.labels(topic, str(partition)).set(n)
                backlog = 0
                pending = getattr(self.reader, "pending", None)
                if pending is not None:
                    backlog += pending()
                stats = getattr(self.notifier, "stats", None)
                if stats is not None:
                    backlog += sum(
                        ch.get("queued", 0) for ch in stats().get("channels", {}).values()
                    )
                m.delivery_backlog.set(backlog)
            except Exception as exc:  # noqa: BLE001 - metrics must never stop the runtime
                log.debug("metrics report failed: %s", exc)
            await asyncio.sleep(interval)

    async def _start_with_retry(self, start: Callable[[], Awaitable[None]], what: str) -> None:
        backoff = Backoff()
        servers = self.config.kafka.bootstrap_servers if self.config.kafka else "the broker"
        while True:
            try:
                await start()
                return
            except Exception as exc:  # noqa: BLE001 - retried with backoff, then re-raised
                if self.start_retries is not None and backoff.attempt >= self.start_retries:
                    from ..errors import SourceError

                    raise SourceError(
                        f"{what}: cannot reach {servers} ({type(exc).__name__})"
                    ) from None
                log.warning(
                    "%s cannot reach %s (%s); retrying in %.1fs (attempt %d)",
                    what,
                    servers,
                    type(exc).__name__,
                    backoff.delay,
                    backoff.attempt + 1,
                )
                await backoff.wait()

    async def _ensure_internal_topics(self) -> None:
        from ..ops.broker import ensure_topics
        from .repartition import rekeyed

        kcfg = self.config.kafka
        assert kcfg is not None
        wanted = {kcfg.alert_topic: 3, kcfg.alert_dlq_topic: 1, kcfg.topics.active_alerts: 3}
        for internal in self.judge.internal:
            wanted[rekeyed(internal)[1]] = kcfg.repartition_partitions
        for b in self.config.kafka_bindings:
            if b.topic:
                wanted[b.topic + kcfg.dlq_suffix] = 1
        if kcfg.embedded:
            for b in self.config.kafka_bindings:
                if b.topic:
                    wanted.setdefault(b.topic, 3)
        from ..notify.active import retention_ms

        configs = {
            kcfg.topics.active_alerts: {
                "retention.ms": retention_ms(self.config.api.resolve_timeout)
            }
        }
        try:
            await ensure_topics(kcfg.client_kwargs(), wanted, configs=configs)
        except Exception as exc:  # noqa: BLE001 - may lack ACLs; the producer will tell
            log.warning(
                "could not create internal topics (%s); create %s yourself or allow auto-creation",
                exc,
                ", ".join(sorted(wanted)),
            )
            return
        # A topic just created may have no leader yet (Tansu answers NotLeaderForPartition
        # for a moment): wait until the producer sees partitions for each, briefly.
        deadline = time.monotonic() + 15
        for topic in wanted:
            while time.monotonic() < deadline:
                try:
                    if await asyncio.wait_for(self.producer.partitions_for(topic), 2):
                        break
                except Exception:  # noqa: BLE001 - not ready yet
                    pass
                await asyncio.sleep(0.2)
        if self.config.checkpoints:
            await self._ensure_changelogs()

    async def _ensure_changelogs(self) -> None:
        """The changelogs of the named source topics, in one admin request, before the
        checkpointer's reader starts: created at assignment instead, each new topic cost that
        reader a metadata round and a retry backoff (0.1 s) before its end offsets, 0.7 s for
        the default topics. A topic matched by a pattern gets its changelog at assignment."""
        from ..ops.broker import ensure_topics

        kcfg = self.config.kafka
        assert kcfg is not None
        sources = [b.topic for b in self.config.kafka_bindings if b.topic]
        sources += [b.topic for b in self.judge.internal if b.topic]
        wanted = {}
        for topic in sources:
            try:
                partitions = await asyncio.wait_for(self.producer.partitions_for(topic), 2)
            except Exception:  # noqa: BLE001 - not there yet: created at assignment
                continue
            if partitions:
                wanted[kcfg.topics.state(topic)] = len(partitions)
        try:
            await ensure_topics(kcfg.client_kwargs(), wanted)
        except Exception as exc:  # noqa: BLE001 - retried at assignment, which tells
            log.debug("changelogs not created ahead (%s)", exc)

    def _make_notifier(self) -> Any:
        from ..notify import Notifier

        notify_cfg = dict(self.config.notify)
        notify_cfg.update(self.notify_overrides)
        dead_letter = None
        if self.producer is not None and self.config.kafka is not None:
            topic = self.config.kafka.alert_dlq_topic
            producer = self.producer

            async def dead_letter(records: list[dict[str, Any]]) -> None:
                from ..notify.undelivered import encode_to_fit
                from .batches import DEFAULT_MAX_REQUEST_SIZE, RECORD_OVERHEAD

                limit = DEFAULT_MAX_REQUEST_SIZE - RECORD_OVERHEAD
                futures = [
                    await producer.send(topic, value)
                    for r in records
                    for value in encode_to_fit(r, limit)
                ]
                await asyncio.gather(*futures)

        silences, shared_log = self._shared_notify_state(notify_cfg)
        return Notifier.from_config(
            notify_cfg,
            state_dir=self.config.state_dir,
            alerts_file=self.alerts_file,
            console=self.console,
            dead_letter=dead_letter,
            silences=silences,
            shared_log=shared_log,
        )

    def _shared_notify_state(self, notify_cfg: dict[str, Any]) -> tuple[Any, Any]:
        """What every worker of the deployment must see alike: silences and the notification
        log. With Kafka, topics of the deployment (notify/silences.py, notify/sharedlog.py);
        without, the shared state directory (not a worker's own)."""
        from ..notify.settings import parse_settings
        from ..notify.silences import SilenceStore, SilenceTable
        from ..notify.store import open_db

        kcfg = self.config.kafka
        silences: Any = None
        shared_log: Any = None
        if kcfg is not None and self.producer is not None:
            from ..notify.sharedlog import SharedNotificationLog

            settings = parse_settings(notify_cfg)
            shared_log = SharedNotificationLog(
                kcfg,
                self.producer,
                retention=max(settings.nlog_retention, settings.repeat_interval),
            )
            if hasattr(self.reader, "assign_hooks"):  # the Kafka alert log's reader
                self.reader.assign_hooks.append(shared_log.caught_up)
            # an embedded broker lives as long as this run, out of the CLI's reach: its
            # silences stay in the state directory, where `streamproc silence` writes them
            if not kcfg.embedded and not self.console:
                silences = SilenceTable(kcfg)
        if silences is None and self.worker is not None:
            # a worker's state_dir is <state_dir>/worker-N (runner.py)
            silences = SilenceStore(open_db(self.config.state_dir.parent), owns_db=True)
        return silences, shared_log

    def _count(self, n: int) -> None:
        if self.startup.first_record is None:
            self.startup.end("first_fetch")
            self.startup.judged(self.metrics)
        if self._max_events_judged():
            self._stop.set()

    def _max_events_judged(self) -> bool:
        """``--max-events``: the records counted are judged everywhere they went: their
        copies on the repartition topics are read back too, and no repartitioned task's
        merge still holds one. A worker that does not read every repartition partition
        (one among several) cannot count the copies it wrote: it stops on the count alone."""
        stats = self.stats
        if self.max_events is None or stats.records_in < self.max_events:
            return False
        if stats.repartitioned_in < stats.repartitioned_out and self._reads_every_copy():
            return False
        return not any(e.merge is not None and len(e.merge) for e in self.judge.engines.values())

    def _reads_every_copy(self) -> bool:
        """Whether this worker's consumer is assigned every partition of every repartition
        topic (so every copy it wrote comes back to it)."""
        consumer = next(
            (
                getattr(s, "consumer", None)
                for s in self.sources
                if getattr(s, "consumer", None) is not None
            ),
            None,
        )
        if consumer is None:
            return False
        assigned = consumer.assignment()
        for internal in self.judge.internal:
            parts = consumer.partitions_for_topic(internal.topic) or set()
            if not parts or any(TopicPartition(internal.topic, p) not in assigned for p in parts):
                return False
        return True

    def request_stop(self) -> None:
        self._stop.set()

    async def wait(self) -> None:
        """Run until stopped, idle (``exit_when_idle``), or a loop fails."""
        while not self._stop.is_set():
            failed = [
                t
                for t in self._tasks
                if t.done() and not t.cancelled() and t.exception() is not None
            ]
            if failed and (error := failed[0].exception()) is not None:
                raise error
            if self._max_events_judged():  # (a merge lets its last records go on a tick)
                break
            if self.exit_when_idle is not None:
                last = self.stats.last_record_at or self.started_at
                delivery_idle = self.delivery is None or self.delivery.idle.is_set()
                if time.time() - last >= self.exit_when_idle and delivery_idle:
                    log.info("no record for %.0fs: stopping", self.exit_when_idle)
                    break
            try:
                await asyncio.wait_for(self._stop.wait(), 0.2)
            except TimeoutError:
                pass

    async def stop(self) -> None:
        self.ready = False
        if self.metrics is not None:
            self.metrics.set_ready("sources", False)
        for loop in self.ingest:
            loop.stopping = True
        ingest_tasks = [t for t in self._tasks if t.get_name().startswith("ingest")]
        if ingest_tasks:
            done, pending = await asyncio.wait(ingest_tasks, timeout=5)
            for t in pending:
                t.cancel()
        for t in self._tasks:
            if t.get_name() in ("metrics", "file-checkpoints", "memory-guard"):
                t.cancel()
        for loop in self.ingest:
            # (each loop writes what its ticks reject as it goes; anything still in the
            # engines is written before the checkpoint that no longer holds it)
            if not loop.unsettled and (dead := self.judge.take_rejected(loop.source_kind)):
                try:
                    await loop.write_dead(dead)
                except (KafkaError, OSError) as exc:
                    loop.unsettled = True  # no checkpoint: a restart judges them again
                    log.error("cannot write dead letters on stop (%s)", type(exc).__name__)
        if any(loop.unsettled for loop in self.ingest):
            # cancelled mid-batch (the 5 s above ran out)
            log.warning(
                "stopped with a batch judged but not yet durable: the previous "
                "checkpoint stands and those records are read again on restart"
            )
        elif self.progress is not None:
            try:
                async with self.progress.source.batch_lock:
                    await self.progress.checkpoint()
            except Exception as exc:  # noqa: BLE001 - the last checkpoint still stands
                log.error("final checkpoint failed: %s", exc)
        if self.file_checkpointer is not None:
            try:
                self.file_checkpointer.save()
            except OSError as exc:
                log.error("final state file write failed: %s", exc)
        for source in self.sources:
            await source.stop()
        if self.checkpointer is not None:
            await self.checkpointer.stop()
        if self.delivery is not None:
            deadline = time.monotonic() + self.drain_timeout
            await asyncio.sleep(0)
            while time.monotonic() < deadline and not self.delivery.idle.is_set():
                await asyncio.sleep(0.05)
            self.delivery.stopping = True
        for t in self._tasks:
            if not t.done():
                try:
                    await asyncio.wait_for(asyncio.shield(t), 2)
                except (TimeoutError, Exception):  # noqa: BLE001
                    t.cancel()
        if self.notifier is not None:
            try:
                await self.notifier.close()
            except Exception as exc:  # noqa: BLE001
                log.error("notifier close failed: %s", exc)
        if self.reader is not None:
            await self.reader.stop()
        if self.active_alerts is not None:
            await self.active_alerts.stop()  # (its last records sent before the producer)
        if self.producer is not None:
            # Everything that must be durable was acknowledged before its offsets were
            # committed (above); what the producer may still hold is best effort (active
            # alerts), so its flush is bounded.
            try:
                await asyncio.wait_for(self.producer.stop(), 5)
            except Exception as exc:  # noqa: BLE001
                log.debug("producer stop: %s", type(exc).__name__)

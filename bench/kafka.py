"""kafka: produce N events to the embedded Tansu broker, then consume, decode, detect and append
alerts with commits and state checkpoints on, through the runtime users run.

Per run (a fresh broker each time, so no checkpoint or committed offset of an earlier run can
leak into the next):

1. produce N mixed events with pre-built batches (``streamproc.commands.produce.produce_kafka``),
   keyed by the contract key, 3 partitions per topic: records/s of the producer;
2. baseline: a raw aiokafka consumer (no group) ``getmany``-s every record: records/s;
3. streamproc: ``Runtime`` with the default bindings, a consumer group, the Kafka alert log,
   checkpoints every 10 s and on shutdown, a notifier that accepts and drops (delivery is the
   notify scenario's subject): records/s from the first record judged to the last;
4. verification: the alerts in ``<group>.alerts`` (each fingerprint once: the log is
   at-least-once) equal the generator's expected counts (password_spray, keyed by ip_address
   on auth-logs partitioned by username, is judged on the runtime's repartition topic; a
   runtime without repartitioning lists it as not checked), and the group's
   committed offsets account for every record produced (counted, not read from end offsets:
   Tansu's are wrong after batched produce).

Then, once, latency: a fresh broker, the runtime started first, M events produced at 50% of
the median sustained rate; latency = the time a live consumer of ``<group>.alerts`` sees an
alert minus the Kafka CreateTime of the record that decided it (p50/p99; target p99 <= 250 ms).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from typing import Any

from .common import Context, Row, verify_counts

DEFAULT_EVENTS = 1_000_000
PARTITIONS = 3
RATIO_TARGET = 0.60
P99_TARGET_MS = 250.0
NOT_PARTITION_ALIGNED = {
    "password_spray": "keyed by ip_address; auth-logs is partitioned by username, so a spray "
    "is split over partitions (run one partition, or re-key, to detect it)",
}


class NullNotifier:
    """Accepts alerts and drops them: this scenario measures ingest, not delivery."""

    def __init__(self) -> None:
        self.submitted = 0

    async def start(self) -> None:
        return None

    async def submit(self, alerts: list[Any]) -> None:
        self.submitted += len(alerts)

    async def close(self) -> None:
        return None


def bench_config(
    bootstrap: str, group: str, *, checkpoint_interval: float = 10.0, state_dir: str = "bench-state"
) -> Any:
    from streamproc.config import parse_config

    return parse_config(
        {
            "kafka": {"bootstrap_servers": bootstrap, "group_id": group},
            "state": {"checkpoint_interval": checkpoint_interval},
            "state_dir": state_dir,
        },
        file=None,
    )


async def produce(
    bootstrap: str, items: list[tuple[str, bytes | None, bytes]], *, rate: float = 0.0
) -> Any:
    from streamproc.commands.produce import produce_kafka

    topics = {t for t, _, _ in items}
    return await produce_kafka(
        {"bootstrap_servers": bootstrap},
        items,
        rate=rate,
        partitions=dict.fromkeys(topics, PARTITIONS),
    )


async def raw_consume(
    bootstrap: str, topics: list[str], n: int, timeout: float = 120.0
) -> tuple[float, dict[tuple[str, int, int], int]]:
    """Baseline: getmany until n records; (seconds from first record, {} )."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    started = time.perf_counter()
    try:
        got = 0
        first = None
        deadline = time.monotonic() + timeout
        while got < n and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=10000)
            if first is None and got == 0 and batches:
                # from the first record; from the start if one fetch brought everything
                first = time.perf_counter() if sum(map(len, batches.values())) < n else started
            for records in batches.values():
                got += len(records)
        end = time.perf_counter()
    finally:
        await consumer.stop()
    if got < n:
        raise RuntimeError(f"raw consumer read {got} of {n} records within {timeout:.0f}s")
    return max(1e-9, end - (first or started)), {}


async def record_times(
    bootstrap: str, wanted: set[tuple[str, int, int]]
) -> dict[tuple[str, int, int], float]:
    """CreateTime (epoch s) of the given (topic, partition, offset) records."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    out: dict[tuple[str, int, int], float] = {}
    by_tp: dict[tuple[str, int], list[int]] = {}
    for t, p, o in wanted:
        by_tp.setdefault((t, p), []).append(o)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        for (t, p), offsets in by_tp.items():
            tp = TopicPartition(t, p)
            consumer.assign([tp])
            for o in sorted(offsets):
                consumer.seek(tp, o)
                batch = await consumer.getmany(tp, timeout_ms=2000, max_records=1)
                for rec in batch.get(tp, []):
                    if rec.offset == o:
                        out[(t, p, o)] = rec.timestamp / 1000.0
    finally:
        await consumer.stop()
    return out


async def committed_total(
    bootstrap: str, group: str, topics: list[str], n_partitions: int = PARTITIONS
) -> int:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        total = 0
        for t in topics:
            for p in range(n_partitions):
                total += await consumer.committed(TopicPartition(t, p)) or 0
        return total
    finally:
        await consumer.stop()


class AlertWatcher:
    """Reads the alert log live and notes when each alert became visible there."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.seen: list[tuple[float, dict[str, Any]]] = []
        self._task: asyncio.Task[None] | None = None
        self._consumer: Any = None

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer

        from streamproc.ops.broker import ensure_topics

        await ensure_topics({"bootstrap_servers": self.bootstrap}, {self.topic: 3})
        self._consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=10,
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        import orjson

        while True:
            batches = await self._consumer.getmany(timeout_ms=50)
            now = time.time()
            for records in batches.values():
                for rec in records:
                    self.seen.append((now, orjson.loads(rec.value)))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()


async def provision_internal_topics(config: Any) -> None:
    """Create the runtime's internal topics (alert log, repartition topics) ahead of time, as
    an operator provisions them on a cluster without auto-creation.

    Why: on Tansu, producing to a topic created a moment earlier can fail with
    NotLeaderForPartitionError, and the runtime (at the time of writing) creates its
    repartition topics at start and produces to them at once; the first batches' repartitioned
    records are then lost for the run. Provisioning first keeps this benchmark about
    throughput; the race is reported separately.
    """
    from streamproc.ops.broker import ensure_topics
    from streamproc.pipeline.runtime import Judge

    kcfg = config.kafka
    wanted = {kcfg.alert_topic: 3, kcfg.alert_dlq_topic: 1}
    judge = Judge(config, repartition=True)
    for internal in getattr(judge, "internal", []):
        wanted[internal.topic] = getattr(kcfg, "repartition_partitions", 6)
    await ensure_topics(kcfg.client_kwargs(), wanted)
    await asyncio.sleep(1.0)


async def run_runtime(
    bootstrap: str,
    group: str,
    n: int,
    state_dir: str,
    timeout: float = 600.0,
    watcher: AlertWatcher | None = None,
    before_wait: Any = None,
    config: Any = None,
) -> dict[str, Any]:
    """Run the runtime until it has judged ``n`` records; returns timing and its alerts.
    ``config``: the runtime's (default: ``bench_config``, the six default topics)."""
    from streamproc.pipeline.runtime import Runtime

    if config is None:
        config = bench_config(bootstrap, group, state_dir=state_dir)
    await provision_internal_topics(config)
    runtime = Runtime(config, notifier=NullNotifier(), start_retries=3)
    own_watcher = watcher is None
    watcher = watcher or AlertWatcher(bootstrap, config.kafka.alert_topic)  # type: ignore[union-attr]
    if own_watcher:
        await watcher.start()
    await runtime.start()
    started = time.perf_counter()
    stats = runtime.stats
    first = None
    if before_wait is not None:
        # Latency is measured in steady state: feed only once the group has assigned every
        # partition (joining takes a few hundred ms to seconds on Tansu).
        join_deadline = time.monotonic() + 30
        while time.monotonic() < join_deadline:
            consumers = [getattr(s, "consumer", None) for s in runtime.sources]
            if consumers and all(c is not None and c.assignment() for c in consumers):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
    producer_task = asyncio.create_task(before_wait()) if before_wait is not None else None
    deadline = time.monotonic() + timeout
    try:
        while stats.records_in < n:
            if first is None and stats.records_in > 0:
                first = time.perf_counter()
            failed = [
                t
                for t in runtime._tasks
                if t.done() and not t.cancelled() and t.exception() is not None
            ]
            if failed:
                raise failed[0].exception()  # type: ignore[misc]
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"runtime judged {stats.records_in} of {n} records within {timeout:.0f}s"
                )
            await asyncio.sleep(0.002)
        end = time.perf_counter()
        if first is None:  # everything arrived in the first batch (tiny N)
            first = started
        # Detectors whose key is not the topic's key (password_spray by ip_address on
        # auth-logs partitioned by username) judge records re-produced to repartition topics:
        # the work is done when those stop arriving too.
        # A repartitioned task merges its source partitions by event time and holds the
        # newest records until every source has caught up or gone quiet (detectors/merge.py,
        # up to its ``wait`` after the last record): done when nothing arrives and nothing is
        # held. (Stopping earlier leaves the held records to the checkpoint, not judged.)
        if getattr(runtime.judge, "repartition_targets", None):
            seen, stable_since = -1, time.perf_counter()
            while time.monotonic() < deadline:
                now_in = getattr(stats, "repartitioned_in", 0)
                if now_in != seen:
                    if seen >= 0:
                        end = time.perf_counter()
                    seen, stable_since = now_in, time.perf_counter()
                elif time.perf_counter() - stable_since >= 1.0 and not _held(runtime):
                    break
                await asyncio.sleep(0.01)
        if producer_task is not None:
            await producer_task
        errors = [
            f"{t.get_name()}: {t.exception()!r}"
            for t in runtime._tasks
            if t.done() and not t.cancelled() and t.exception() is not None
        ]
        if errors:
            raise RuntimeError(
                "runtime task failed after judging every record: " + "; ".join(errors)
            )
    finally:
        await runtime.stop()
    # The alerts appended last need a moment to be fetched by the watcher.
    appended = runtime.alert_log.appended if runtime.alert_log is not None else 0
    wait_until = time.monotonic() + 10
    while len(watcher.seen) < appended and time.monotonic() < wait_until:
        await asyncio.sleep(0.05)
    if own_watcher:
        await watcher.stop()
    return {
        "seconds": max(1e-9, end - first),
        "records_in": stats.records_in,
        "dead_letters": dict(stats.dead_by_reason),
        "appended": appended,
        "alerts": [a for _, a in watcher.seen],
        "seen": list(watcher.seen),
        "events": stats.events,
        "repartitioned": bool(getattr(runtime.judge, "repartition_targets", None)),
        "repartitioned_in": getattr(stats, "repartitioned_in", 0),
        # records the repartition merge let out of event-time order (its memory bound)
        "merge_forced": sum(
            e.merge.forced for e in runtime.judge.engines.values() if e.merge is not None
        ),
    }


def _held(runtime: Any) -> int:
    """Records the runtime's repartitioned tasks hold back for their merge."""
    return sum(
        len(engine.merge) for engine in runtime.judge.engines.values() if engine.merge is not None
    )


def _one_run(
    ctx: Context, n: int, items: list[Any], topics: list[str], run_no: int
) -> dict[str, Any]:
    import tempfile

    from streamproc.ops.broker import EmbeddedKafka

    out: dict[str, Any] = {}
    with EmbeddedKafka() as broker, tempfile.TemporaryDirectory() as state_dir:
        bs = broker.bootstrap_servers
        res = asyncio.run(produce(bs, items))
        out["produce_rate"] = res.rate
        ctx.step(f"kafka run {run_no}: produced {res.records:,} at {res.rate:,.0f}/s")
        seconds, _ = asyncio.run(raw_consume(bs, topics, n))
        out["raw_rate"] = n / seconds
        ctx.step(f"kafka run {run_no}: raw getmany {n / seconds:,.0f}/s")
        group = f"bench-{run_no}"
        rt = asyncio.run(run_runtime(bs, group, n, state_dir))
        out["rate"] = n / rt["seconds"] if rt["seconds"] else 0.0
        out["runtime"] = {k: v for k, v in rt.items() if k not in ("alerts", "seen")}
        out["alerts"] = rt["alerts"]
        out["committed"] = asyncio.run(committed_total(bs, group, topics))
        ctx.step(
            f"kafka run {run_no}: streamproc {out['rate']:,.0f}/s, "
            f"{rt['appended']} alerts, committed {out['committed']:,}/{n:,}"
        )
    return out


def latency_phase(ctx: Context, rate: float, n_max: int) -> dict[str, Any]:
    """At ``rate`` events/s (50% of the sustained maximum): p50/p99 produce -> alert log."""
    import tempfile

    from streamproc.commands.produce import kafka_items, kafka_topics
    from streamproc.ops.broker import EmbeddedKafka, ensure_topics

    # ~20 s of traffic at that rate, at most --events (and at least a few hundred events, so
    # the stream has incidents).
    m = max(min(300, n_max), min(n_max, int(rate * 20)))
    traffic = ctx.traffic("mixed", m)
    items = kafka_items(traffic, kafka_topics(None, list(traffic.records)))
    topics = sorted({t for t, _, _ in items})
    with EmbeddedKafka() as broker, tempfile.TemporaryDirectory() as state_dir:
        bs = broker.bootstrap_servers

        async def go() -> dict[str, Any]:
            await ensure_topics({"bootstrap_servers": bs}, dict.fromkeys(topics, PARTITIONS))
            watcher = AlertWatcher(bs, bench_config(bs, "bench-latency").kafka.alert_topic)
            await watcher.start()

            async def feed() -> None:
                await produce(bs, items, rate=rate)

            try:
                rt = await run_runtime(
                    bs, "bench-latency", len(items), state_dir, watcher=watcher, before_wait=feed
                )
            finally:
                await watcher.stop()
            wanted = {
                (a["source"]["topic"], a["source"]["partition"], a["source"]["offset"])
                for _, a in rt["seen"]
                if a.get("source", {}).get("offset", -1) >= 0
            }
            times = await record_times(bs, wanted)
            lat = []
            by_kind: dict[str, list[float]] = {}
            for seen_at, a in rt["seen"]:
                src = a.get("source") or {}
                key = (src.get("topic"), src.get("partition"), src.get("offset"))
                if key in times:
                    ms = (seen_at - times[key]) * 1000.0
                    lat.append(ms)
                    by_kind.setdefault(a.get("kind", "?"), []).append(ms)
            # where the tail comes from (repartitioned detectors take a second broker trip)
            kinds = {
                k: {"alerts": len(v), "p50_ms": percentile(v, 50), "p99_ms": percentile(v, 99)}
                for k, v in sorted(by_kind.items())
            }
            return {
                "latencies_ms": lat,
                "by_kind": kinds,
                "events": len(items),
                "rate": rate,
                "alerts": len(rt["seen"]),
                "timed_alerts": len(lat),
            }

        return asyncio.run(go())


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100.0 * (len(ordered) - 1))))
    return ordered[k]


def verify_run(
    expected: dict[str, int],
    alerts: list[dict[str, Any]],
    committed: int,
    produced: int,
    dead_letters: dict[str, int],
    skip: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A runtime run against the generator: its alerts (``verify_counts``), every offset
    committed, no dead letter."""
    # The alert log is at-least-once (a rebalance re-judges uncommitted records and appends
    # the same alerts again; delivery deduplicates by fingerprint): count each (fingerprint,
    # status) once, and report the duplicates.
    unique = {(a.get("fingerprint"), a.get("status"), a.get("audience")): a for a in alerts}
    check = verify_counts(expected, list(unique.values()), skip=skip)
    check["duplicate_alerts"] = len(alerts) - len(unique)
    check["committed"] = committed
    check["produced"] = produced
    if committed != produced:
        check["ok"] = False
        check["commit_error"] = f"committed offsets total {committed}, produced {produced}"
    if dead_letters:
        check["ok"] = False
        check["dead_letters"] = dead_letters
    return check


def run(ctx: Context) -> list[Row]:
    from streamproc.commands.produce import kafka_items, kafka_topics

    n_req = ctx.n(DEFAULT_EVENTS)
    traffic = ctx.traffic("mixed", n_req)
    items = kafka_items(traffic, kafka_topics(None, list(traffic.records)))
    n = len(items)
    topics = sorted({t for t, _, _ in items})
    main = Row(
        "kafka",
        "consume+decode+detect+alert log, commits+checkpoints",
        "events/s",
        baseline_name="raw aiokafka getmany",
        target=f">= {RATIO_TARGET:.0%} of raw",
        target_check=lambda r: (r.ratio or 0) >= RATIO_TARGET,
    )
    prod = Row("kafka", "produce, pre-built batches (create_batch/send_batch)", "records/s")
    main.extra["events"] = n
    verified: dict[str, Any] | None = None
    for i in range(ctx.runs):
        out = _one_run(ctx, n, items, topics, i + 1)
        prod.runs.append(out["produce_rate"])
        main.baseline_runs.append(out["raw_rate"])
        main.runs.append(out["rate"])
        main.extra.setdefault("per_run", []).append(
            out["runtime"]
            | {
                "committed": out["committed"],
                "raw_rate": out["raw_rate"],
                "produce_rate": out["produce_rate"],
            }
        )
        check = verify_run(
            traffic.expected,
            out["alerts"],
            out["committed"],
            n,
            out["runtime"]["dead_letters"],
            skip=None if out["runtime"]["repartitioned"] else NOT_PARTITION_ALIGNED,
        )
        if verified is None or not check["ok"]:
            verified = check
    main.verified = verified
    rows = [main, prod]
    sustained = main.median or 0.0
    lat_row = Row(
        "kafka",
        "alert latency p99 at 50% of sustained rate",
        "ms",
        higher_is_better=False,
        target=f"<= {P99_TARGET_MS:.0f} ms",
        target_check=lambda r: (r.median or 1e9) <= P99_TARGET_MS,
    )
    if sustained <= 0:
        lat_row.skipped = "no sustained rate measured"
        rows.append(lat_row)
        ctx.step("kafka latency skipped")
        return rows
    lat = latency_phase(ctx, sustained * 0.5, n)
    values = lat.pop("latencies_ms")
    p50, p99 = percentile(values, 50), percentile(values, 99)
    lat_row.runs = [p99] if p99 is not None else []
    lat_row.extra = lat | {
        "p50_ms": p50,
        "p99_ms": p99,
        "max_ms": max(values, default=None),
        "mean_ms": statistics.mean(values) if values else None,
    }
    if p99 is None:
        lat_row.skipped = "no alert could be matched to its source record"
    p50_row = Row(
        "kafka",
        "alert latency p50 at 50% of sustained rate",
        "ms",
        runs=[p50] if p50 is not None else [],
        higher_is_better=False,
        extra={"rate": lat["rate"]},
    )
    rows += [lat_row, p50_row]
    ctx.step(
        f"kafka latency at {sustained * 0.5:,.0f}/s: p50 {p50 or 0:.0f} ms, "
        f"p99 {p99 or 0:.0f} ms over {len(values)} alerts"
    )
    return rows


STEPS_PER_RUN = 3
EXTRA_STEPS = 1

"""``streamproc replay``: run the detectors over files, offline and deterministically.

Where an event goes::

    TOPIC=FILE ...  -> binding per topic (config, else the default topic of that name)
        |               each file is one partition
        v
    decode every line (JSONL, access-log lines for ``format: combined``, lines by pattern
        |   for ``regex``, ``sshd`` and ``syslog``; .gz is fine; a file that cannot be read to
        |   its end stops at its last whole line, named in ``ReplayResult.unread``, exit 3),
        |   BATCH lines at a time, by the same call as the live runtime (decode/batch.py)
        |-- undecodable -> dead letters (reason from the decoder, offset = line number)
        v
    merge the files in event-time order (k-way merge of the files' heads: a file's own
        |   order is kept, it is the arrival order, so out-of-order lines stay out of order)
        v
    one DetectorEngine per binding (watermark, lateness, timers), judged through the
        |   runtime's Judge (pipeline/runtime.py: its decoders, ``judge_events``)
        |-- behind the watermark -> dead letters with reason ``late``
        |-- a jump of event time that later records contradict -> ``time_jump``
        |   (see detectors/engine.py; no wall clock here, so no ``future`` rule)
        v
    end of input: finish() sets each watermark to the largest event time seen; due timers
        fire. Alerts are sorted by (event time, binding name, emission order) and written as
        JSON lines: the same input gives byte-identical output.

Library use (tests, benchmarks): ``replay_records(config, inputs) -> ReplayResult`` with
``ReplayInput(topic, path=...)`` or ``ReplayInput(topic, lines=[b"...", ...])``.
"""

from __future__ import annotations

import argparse
import gzip
import heapq
import sys
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import IO, Any

from ..alerts import SEVERITIES, Alert
from ..config import Binding, Config, load_config
from ..decode import BatchDecoder, DeadLetter
from ..decode.deadletter import MAX_DEAD_LETTER_BYTES
from ..detectors import DetectorEngine
from ..errors import ConfigError, StreamprocError
from ..events import Event
from ..pipeline.runtime import Judge, TaskId
from ..storage.files import open_private

BATCH = 4096  # events per engine call: large enough to amortise, small enough for memory
_CHUNK = 1 << 16  # bytes read from a file at a time


class UsageError(StreamprocError):
    """A replay argument is wrong (exit status 2)."""


@dataclass(slots=True)
class ReplayInput:
    topic: str
    path: Path | None = None
    lines: Iterable[bytes] | None = None  # instead of a file: raw records, one per item

    @property
    def name(self) -> str:
        return str(self.path) if self.path is not None else f"<{self.topic}>"


@dataclass(slots=True)
class ReadError:
    """An input read only in part: its lines up to ``lines`` were judged, nothing after."""

    name: str
    lines: int  # whole lines read (blank ones included: the next line number is lines + 1)
    size: int  # their bytes, after decompression for a .gz
    cut: int  # bytes of a line the error cut short, not judged
    reason: str

    def __str__(self) -> str:
        judged = f"lines 1-{self.lines} were judged" if self.lines else "nothing in it was judged"
        cut = f", {self.cut} bytes of line {self.lines + 1} were not" if self.cut else ""
        return (
            f"{self.name}: cannot read past line {self.lines} ({self.size} bytes"
            f"{' decompressed' if self.name.endswith('.gz') else ''}): {self.reason}; "
            f"{judged}{cut}"
        )


@dataclass(slots=True)
class ReplayResult:
    alerts: list[Alert] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    records: int = 0  # lines read (blank lines are not records)
    events: int = 0  # decoded and accepted by an engine
    late: int = 0
    engines: dict[str, DetectorEngine] = field(default_factory=dict)
    unread: list[ReadError] = field(default_factory=list)  # inputs read only in part

    def by_kind(self) -> dict[str, Counter[str]]:
        out: dict[str, Counter[str]] = {}
        for alert in self.alerts:
            counts = out.setdefault(alert.kind, Counter())
            counts[alert.status] += 1
            if alert.status == "firing":
                counts[alert.severity] += 1
            if alert.audience == "customer":
                counts["customer"] += 1
        return dict(sorted(out.items()))

    def dead_letter_reasons(self) -> Counter[str]:
        return Counter(d.reason for d in self.dead_letters)

    def alerts_jsonl(self) -> bytes:
        return b"".join(a.to_json() + b"\n" for a in self.alerts)


# -- arguments ------------------------------------------------------------------------------


def parse_input(spec: str) -> ReplayInput:
    topic, sep, path = spec.partition("=")
    topic, path = topic.strip(), path.strip()
    if not sep or not topic or not path:
        raise UsageError(f"--input {spec!r} is not TOPIC=FILE (e.g. --input auth-logs=auth.jsonl)")
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"--input {spec!r}: no such file {path!r}")
    return ReplayInput(topic=topic, path=file)


def binding_for(config: Config, topic: str) -> Binding:
    """The binding a topic replays through (``Config.binding_for``: a configured one, else
    its default family)."""
    binding = config.binding_for("replay", topic)
    if binding is None:
        names = sorted(
            {b.name for b in config.bindings} | {b.topic for b in config.bindings if b.topic}
        )
        raise UsageError(
            f"unknown topic {topic!r}: no topic binding matches it and it is not "
            f"a default topic; known: {', '.join(names)}"
        )
    return binding


# -- the replay -----------------------------------------------------------------------------


def _lines(inp: ReplayInput, unread: list[ReadError]) -> Iterator[tuple[int, bytes]]:
    """(line number, record bytes) for every non-blank line. A file that cannot be read to
    its end (a .gz copied while it was written, a corrupt one, an I/O error) ends at its last
    whole line, and ``unread`` says where and why, so the lines before it are still judged."""
    if inp.lines is not None:
        for number, raw in enumerate(inp.lines, 1):
            if raw.strip():
                yield number, raw.rstrip(b"\r\n")
        return
    assert inp.path is not None
    opener: Any = gzip.open if inp.path.suffix == ".gz" else open
    with opener(inp.path, "rb") as fh:
        number = done = 0  # whole lines and their bytes (decompressed) read so far
        pending: list[bytes] = []  # a line that spans chunks, joined once it ends
        while True:
            try:
                # read1 is one step of the decompressor: the error comes on the call after
                # the last bytes it could decompress, with none of them held back
                chunk = fh.read1(_CHUNK)
            except (OSError, EOFError, zlib.error) as exc:
                cut = sum(map(len, pending))
                unread.append(
                    ReadError(inp.name, number, done, cut, str(exc) or type(exc).__name__)
                )
                return
            if not chunk:
                break
            if b"\n" not in chunk:
                pending.append(chunk)
                continue
            if pending:
                pending.append(chunk)
                chunk = b"".join(pending)
                pending.clear()
            lines = chunk.split(b"\n")
            last = lines.pop()
            if last:
                pending.append(last)
            for raw in lines:
                number += 1
                done += len(raw) + 1
                if raw.strip():
                    yield number, raw.rstrip(b"\r")
        raw = b"".join(pending)
        if raw.strip():  # a last line without its newline
            yield number + 1, raw.rstrip(b"\r")


def _at(name: str, dl: DeadLetter) -> DeadLetter:
    """``dl``, its detail led by the file and line of its record."""
    dl.detail = f"{name}:{dl.offset}: {dl.detail}"
    return dl


def _decoded(
    inp: ReplayInput, topic: str, partition: int, decoder: BatchDecoder, result: ReplayResult
) -> Iterator[tuple[Event, bytes]]:
    """The file's events in line order, decoded BATCH lines at a time by the call the live
    runtime makes (``BatchDecoder.decode_batch``). A dead letter is recorded when the merge
    reads past its line, as if lines were decoded one by one."""
    dead = result.dead_letters
    lines = _lines(inp, result.unread)
    while True:
        chunk = list(islice(lines, BATCH))
        if not chunk:
            return
        result.records += len(chunk)
        numbers = [number for number, _ in chunk]
        values = [raw for _, raw in chunk]
        events, rejected = decoder.decode_batch(values, topic, partition, numbers)
        for dl in rejected:
            _at(inp.name, dl)
        raw_of = dict(zip(numbers, values, strict=True))
        d = 0
        for ev in events:
            while d < len(rejected) and rejected[d].offset < ev.offset:
                dead.append(rejected[d])
                d += 1
            yield ev, raw_of[ev.offset]
        dead.extend(rejected[d:])


def replay_records(config: Config, inputs: list[ReplayInput]) -> ReplayResult:
    """Run the configured detectors over ``inputs``; nothing is written anywhere."""
    result = ReplayResult()
    judge = Judge(config, partitioned=False, device_topics=False)
    tasks: dict[str, TaskId] = {}  # topic -> its binding's one task
    streams: list[Iterator[tuple[Event, bytes]]] = []
    partitions: Counter[str] = Counter()
    names: dict[tuple[str, int], str] = {}  # (topic, partition) -> file, for dead letters
    for inp in inputs:
        task = tasks.get(inp.topic)
        if task is None:
            binding = binding_for(config, inp.topic)
            if judge.binding(binding.name) is not binding:
                judge.rebind(binding)  # a default topic no configured binding names
            task = tasks[inp.topic] = judge.task_id(binding, "file", inp.topic, 0)
            result.engines.setdefault(binding.name, judge.engine(task))
        partition = partitions[inp.topic]
        partitions[inp.topic] += 1
        names[(inp.topic, partition)] = inp.name
        decoder = judge.decoder(task[0])
        streams.append(_decoded(inp, inp.topic, partition, decoder, result))

    # ties in event time are broken by binding name, then by emission order within the
    # engine: neither depends on the order of --input arguments or on batch boundaries
    emitted: list[tuple[float, str, int, Alert]] = []
    batches: dict[TaskId, list[tuple[Event, bytes]]] = {task: [] for task in tasks.values()}

    def collect(alerts: list[Alert], name: str) -> None:
        for alert in alerts:
            emitted.append((alert.event_time, name, len(emitted), alert))

    def judged(dead: list[DeadLetter]) -> None:
        for dl in dead:
            if dl.reason == "late":
                result.late += 1
            result.dead_letters.append(_at(names[(dl.topic, dl.partition)], dl))

    def flush(task: TaskId) -> None:
        batch = batches[task]
        if not batch:
            return
        raws = {(ev.topic, ev.partition, ev.offset): raw for ev, raw in batch}
        alerts, dead = judge.judge_events(task, [ev for ev, _ in batch], None, raws)
        collect(alerts, task[0])
        judged(dead)
        # (a record held for a time jump and rejected later is counted then)
        result.events += len(batch) - len(dead)
        batch.clear()

    for ev, raw in heapq.merge(*streams, key=lambda item: item[0].ts):
        task = tasks[ev.topic]
        batch = batches[task]
        batch.append((ev, raw))
        if len(batch) >= BATCH:
            flush(task)
    for task in batches:
        flush(task)
    for task in batches:
        alerts, dead = judge.finish_task(task)
        collect(alerts, task[0])
        judged(dead)
        result.events -= len(dead)
    emitted.sort(key=lambda item: item[:3])
    result.alerts = [item[3] for item in emitted]
    return result


# -- the command ----------------------------------------------------------------------------


def main(args: argparse.Namespace) -> int:
    try:
        inputs = [parse_input(spec) for spec in args.input or []]
        if not inputs:
            raise UsageError("give at least one --input TOPIC=FILE")
        try:
            config = load_config(args.config)
            if getattr(args, "rules", None) or getattr(args, "sigma", None):
                from ..rules import add_rules

                add_rules(config, args.rules or [], args.sigma or [])
        except ConfigError as exc:
            raise UsageError(str(exc)) from None
        for skipped in config.rules.skipped:
            print(f"streamproc replay: Sigma rule skipped: {skipped}", file=sys.stderr)
        result = replay_records(config, inputs)
    except UsageError as exc:
        print(f"streamproc replay: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # an input that cannot be opened; read errors are in result.unread
        print(f"streamproc replay: cannot read input: {exc}", file=sys.stderr)
        return 2

    to_stdout = args.alerts_out == "-"
    try:
        if to_stdout:
            sys.stdout.buffer.write(result.alerts_jsonl())
            sys.stdout.flush()
        else:
            with open_private(args.alerts_out, "wb") as out:
                out.write(result.alerts_jsonl())
        dl_path = args.dead_letters_out
        if dl_path is None and not to_stdout and result.dead_letters:
            dl_path = f"{args.alerts_out}.deadletters.jsonl"
        if dl_path is not None:
            with open_private(dl_path, "wb") as out:
                out.write(
                    b"".join(
                        d.encode(MAX_DEAD_LETTER_BYTES - 1) + b"\n" for d in result.dead_letters
                    )
                )
    except OSError as exc:
        print(f"streamproc replay: cannot write output: {exc}", file=sys.stderr)
        _print_unread(result)
        return 1
    print_summary(
        result,
        sys.stderr if to_stdout else sys.stdout,
        alerts_out=args.alerts_out,
        dead_letters_out=dl_path,
    )
    # last, so that it is what a terminal shows; exit 3 tells a script the output is short
    return 3 if _print_unread(result) else 0


def _print_unread(result: ReplayResult) -> bool:
    for error in result.unread:
        print(f"streamproc replay: {error}", file=sys.stderr)
    return bool(result.unread)


def print_summary(
    result: ReplayResult,
    stream: IO[str],
    *,
    alerts_out: str = "",
    dead_letters_out: str | None = None,
) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=stream, width=max(120, Console(file=stream).width), highlight=False)
    table = Table(title="Alerts by kind", title_justify="left")
    table.add_column("kind", no_wrap=True, min_width=24)
    table.add_column("firing", justify="right")
    table.add_column("resolved", justify="right")
    for severity in reversed(SEVERITIES):
        table.add_column(severity, justify="right")
    table.add_column("to customers", justify="right")
    totals: Counter[str] = Counter()
    for kind, counts in result.by_kind().items():
        totals.update(counts)
        table.add_row(
            kind,
            str(counts["firing"]),
            str(counts["resolved"]),
            *[str(counts[s]) for s in reversed(SEVERITIES)],
            str(counts["customer"]),
        )
    table.add_row(
        "total",
        str(totals["firing"]),
        str(totals["resolved"]),
        *[str(totals[s]) for s in reversed(SEVERITIES)],
        str(totals["customer"]),
        style="bold",
    )
    console.print(table)
    reasons = result.dead_letter_reasons()
    dead = ", ".join(f"{r} {n}" for r, n in sorted(reasons.items())) or "none"
    console.print(
        f"{result.records} records, {result.events} events judged, "
        f"{len(result.dead_letters)} dead letters ({dead}), "
        f"{len(result.alerts)} alerts"
        + (f" -> {alerts_out}" if alerts_out and alerts_out != "-" else "")
    )
    if result.dead_letters:
        if dead_letters_out:
            console.print(f"dead letters -> {dead_letters_out}")
        else:
            console.print("dead letters not written: add --dead-letters-out FILE")
    evicted = {
        f"{name}/{d.kind}": d.evictions
        for name, engine in result.engines.items()
        for d in engine.detectors
        if d.evictions
    }
    if evicted:
        console.print(
            "key-cap evictions (raise key_cap): "
            + ", ".join(f"{k} {v}" for k, v in sorted(evicted.items()))
        )

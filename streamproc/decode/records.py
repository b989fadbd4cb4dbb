"""RecordDecoder: bytes -> Event or DeadLetter, for one topic binding.

Order of checks (the first failure names the dead-letter reason):
size -> empty -> UTF-8 -> JSON (or access-log line, or a line by pattern) -> object -> no
repeated key -> field mapping -> required fields -> types and enums -> timestamp.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import orjson

from ..contracts import Contract
from ..events import SOURCE_PROGRESS, CoercionError, Event, parse_timestamp, seconds_value
from .combined import parse_access_log_time, parse_combined
from .deadletter import DeadLetter
from .fields import Reject as _Reject
from .fields import compile_field_checks
from .mapping import FieldMapping
from .patterns import MAX_LINE_BYTES, LineError, LineFormat, MatchTimeout, named_format

# 1 MiB less 8 KiB: a record this large, re-keyed to a repartition topic, still fits one Kafka
# record with its envelope ({"ts", "data", "src"}: under 400 bytes), a key of at most 1 KiB and
# the record's overhead under the producer's 1 MiB max_request_size (batches.py).
DEFAULT_MAX_RECORD_BYTES = 1024 * 1024 - 8 * 1024
# Deeper documents are rejected: no contract needs more than a few levels, and recursive walks
# over hostile nesting (in mapping, evidence, templates) are how decoders fall over.
DEFAULT_MAX_DEPTH = 64
_CONTAINERS = frozenset((dict, list))
_loads = orjson.loads


# A key is a string followed by optional whitespace and a colon. With no whitespace before
# any colon (no " :", and no tab, CR or LF at all: those only occur outside strings), every
# key ends in '":', so a document holds at most count('":') keys; when that equals the
# number of distinct keys parsed, none is repeated (orjson keeps the last one silently). One
# byte count per record, and the whitespace scan once per batch (``compact``) where the
# caller has the batch; a full check only when that is inconclusive.
def spaced_colons(data: bytes) -> bool:
    """True if ``data`` may hold whitespace before a colon (so a key may not end in '":')."""
    return b" :" in data or b"\n" in data or b"\t" in data or b"\r" in data


def keys_within(value: Any, limit: int) -> int:
    """The keys of every object in a parsed JSON value (orjson's: exact dicts and lists), or
    -1 when it nests deeper than ``limit`` (a scalar, an empty object: depth 1). One walk, a
    level of nesting at a time in plain loops: on Filebeat's nested ECS records (~35 keys in
    14 objects and lists) 2.4x faster than the stack of generator expressions it replaces,
    which also needed a second walk for the depth."""
    count = 0
    depth = 0
    level = [value]
    containers = _CONTAINERS
    while level:
        depth += 1
        if depth > limit:
            return -1
        deeper: list[Any] = []
        for node in level:
            if type(node) is dict:
                count += len(node)
                node = node.values()
            elif type(node) is not list:
                continue
            for child in node:
                if type(child) in containers:
                    deeper.append(child)
        level = deeper
    return count


def _no_repeated_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Reject(
                    "duplicate_field", f"key {key[:40]!r} appears more than once in one object"
                )
            seen.add(key)
    return out


def check_repeated_keys(value: bytes) -> None:
    """Reject a document that repeats a key in any object: the full check, a parse that
    sees every key (``RecordDecoder._check_repeats`` tries the cheap bound first)."""
    try:
        json.loads(value, object_pairs_hook=_no_repeated_pairs)
    except RecursionError:
        raise _Reject("too_deep", "nesting exceeds the JSON parser's depth limit") from None
    except ValueError as exc:  # orjson took it; the standard parser should too
        raise _Reject("not_json", f"not JSON: {str(exc)[:120]}") from None


@dataclass(slots=True)
class RawRecord:
    value: bytes
    topic: str = ""
    partition: int = 0
    offset: int = -1
    key: bytes | None = None


class RecordDecoder:
    def __init__(
        self,
        contract: Contract,
        *,
        fmt: str = "json",
        mapping: FieldMapping | None = None,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
        max_depth: int = DEFAULT_MAX_DEPTH,
        lines: LineFormat | None = None,
    ) -> None:
        if lines is None and fmt not in ("json", "combined", "internal", "regex"):
            lines = named_format(fmt)  # ValueError for an unknown one
        if fmt == "regex" and lines is None:
            raise ValueError("format regex needs its LineFormat (lines=)")
        # a line format (format: {regex: ...}, sshd, syslog): lines are parsed by pattern
        self.lines = lines
        self.contract = contract
        self.family = contract.family
        self.fmt = fmt
        self.mapping = mapping
        self.max_record_bytes = max_record_bytes
        self.max_depth = max_depth
        self._check_fields = compile_field_checks(contract)
        self._json = fmt == "json" and max_depth >= 1  # (a mapping or not: see vouched)
        # JSON records without a mapping (the common binding) take a shorter path in decode().
        self._plain_json = self._json and mapping is None
        # True while the caller vouches that the records it decodes have no whitespace
        # before a colon (it ran spaced_colons() over the whole batch): see above
        self.compact = False

    def decode(
        self,
        value: bytes,
        topic: str = "",
        partition: int = 0,
        offset: int = -1,
        key: bytes | None = None,
    ) -> Event | DeadLetter:
        try:
            if self._plain_json and value and len(value) <= self.max_record_bytes:
                # _decode's steps for the common case, inlined: this runs once per record
                # and every Python call costs about as much as a field check. A flat object
                # (every value a scalar: depth 1) is what nearly every producer sends;
                # anything else is parsed again by _parse_json, which says what is wrong.
                try:
                    data = _loads(value)
                except orjson.JSONDecodeError:
                    data = None
                if type(data) is not dict or not _CONTAINERS.isdisjoint(map(type, data.values())):
                    data = self._parse_json(value)
                elif value.count(b'":') != len(data) or (not self.compact and spaced_colons(value)):
                    # _check_repeats, inlined (hot path): a key may be repeated
                    check_repeated_keys(value)
                self._check_fields(data)
                return Event(
                    self.family, parse_timestamp(data["timestamp"]), data, topic, partition, offset
                )
            return self._decode(value, topic, partition, offset)
        except CoercionError as exc:
            return DeadLetter(
                exc.reason, exc.detail, value, topic, partition, offset, key, self.family
            )
        except _Reject as exc:
            return DeadLetter(
                exc.reason, exc.detail, value, topic, partition, offset, key, self.family
            )

    def vouched(
        self, value: bytes, ts: float, topic: str, partition: int, offset: int
    ) -> Event | None:
        """The Event of a record whose shape, keys, size and ``ts`` (its timestamp, parsed)
        a caller has checked as ``decode`` does (a RecordFrame read it): parsed, and its
        fields checked and coerced, the rest taken on trust; None where ``decode`` must say
        what it is. Four times cheaper than ``decode`` on an auth record (parsing the
        timestamp and proving the keys are most of that). A binding's field mapping is
        applied as ``decode`` applies it, to the record parsed (its depth vouched for too)."""
        if not self._json:
            return None
        try:
            data = _loads(value)
            if type(data) is not dict:
                return None
            if self.mapping is not None:
                data = self.mapping.apply(data)
            self._check_fields(data)
        except (orjson.JSONDecodeError, CoercionError, _Reject):
            return None
        return Event(self.family, ts, data, topic, partition, offset)

    def decode_batch(self, records: list[RawRecord]) -> tuple[list[Event], list[DeadLetter]]:
        events: list[Event] = []
        dead: list[DeadLetter] = []
        for r in records:
            out = self.decode(r.value, r.topic, r.partition, r.offset, r.key)
            if type(out) is Event:
                events.append(out)
            else:
                dead.append(out)
        return events, dead

    # -- internals -------------------------------------------------------------------------

    def _decode(self, value: bytes, topic: str, partition: int, offset: int) -> Event:
        if self.fmt == "internal":
            # A repartitioned record: decoded and validated once already, by us.
            # The event keeps its ORIGINAL coordinates: lateness is judged per original
            # partition (each is in order; their interleaving on the repartition topic is
            # not), and alerts point at the record a user can find.
            try:
                d = orjson.loads(value)
                src_topic, src_partition, src_offset = d["src"]
                ts = float(d["ts"])
                # no data, nothing else: the source's progress mark (repartition.encode_mark)
                data = SOURCE_PROGRESS if len(d) == 2 and "data" not in d else d["data"]
                partition, offset = int(src_partition), int(src_offset)
                # what we write there, checked as a producer's record would be: anyone who
                # may write to the topic can, and a NaN time or a non-object would reach
                # the detectors, a partition beyond 64 bits the checkpoints
                if (
                    type(data) is not dict
                    or type(src_topic) is not str
                    or not 0 <= ts < math.inf
                    or not -(2**63) <= partition < 2**63
                    or not -(2**63) <= offset < 2**63
                ):
                    raise ValueError("its ts, data or src is not what streamproc writes")
                return Event(self.family, ts, data, src_topic, partition, offset)
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise _Reject("not_json", f"not a streamproc repartition record: {exc}") from None
        if value is None or len(value) == 0:
            raise _Reject("empty", "empty payload")
        if len(value) > self.max_record_bytes:
            raise _Reject(
                "too_large", f"{len(value)} bytes exceeds max_record_bytes={self.max_record_bytes}"
            )
        if self.lines is not None:
            record = self._parse_pattern(value)
        elif self.fmt == "combined" and value[:1] not in (b"{", b" ", b"\t"):
            record = self._parse_line(value)
        else:
            record = self._parse_json(value)
        if self.mapping is not None:
            record = self.mapping.apply(record)
        self._check_fields(record)
        ts = parse_timestamp(record["timestamp"])
        return Event(self.family, ts, record, topic, partition, offset)

    def _parse_json(self, value: bytes) -> dict[str, Any]:
        try:
            record = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            message = str(exc)
            try:
                value.decode("utf-8")
            except UnicodeDecodeError as uexc:
                raise _Reject("not_utf8", f"invalid UTF-8 at byte {uexc.start}") from None
            lowered = message.lower()
            if "recursion" in lowered or "depth" in lowered:  # orjson < 3.10 / >= 3.10
                raise _Reject("too_deep", "nesting exceeds the JSON parser's depth limit") from None
            raise _Reject("not_json", f"not JSON: {message[:120]}") from None
        # Cheap guards first. A dict whose values are all scalars has depth 1 (the common,
        # flat record: one C-level pass over its values); otherwise one walk counts its keys
        # at every level and checks its depth (keys_within).
        if (
            type(record) is dict
            and self.max_depth >= 1
            and _CONTAINERS.isdisjoint(map(type, record.values()))
        ):
            self._check_repeats(value, len(record))
            return record
        if type(record) is not dict:
            # an array may be too deep; a scalar is depth 1, and is checked only where its
            # text holds more brackets than max_depth (a max_depth below 1: never in a config)
            if type(record) is list:
                if keys_within(record, self.max_depth) < 0:
                    raise self._too_deep()
            elif self.max_depth < 1 and value.count(b"{") + value.count(b"[") > self.max_depth:
                raise self._too_deep()
            kind = "array" if isinstance(record, list) else type(record).__name__
            raise _Reject("not_object", f"top-level JSON value is an {kind}, not an object")
        keys = keys_within(record, self.max_depth)
        if keys < 0:
            raise self._too_deep()
        self._check_repeats(value, keys)
        return record

    def _too_deep(self) -> _Reject:
        return _Reject("too_deep", f"nesting depth exceeds max_depth={self.max_depth}")

    def _check_repeats(self, value: bytes, keys: int) -> None:
        """``value`` parsed into ``keys`` distinct keys: reject it if it repeats one."""
        if value.count(b'":') != keys or (not self.compact and spaced_colons(value)):
            check_repeated_keys(value)

    def _parse_pattern(self, value: bytes) -> dict[str, Any]:
        assert self.lines is not None
        if len(value) > MAX_LINE_BYTES:
            raise _Reject(
                "too_large",
                f"a {len(value)}-byte line exceeds the "
                f"{MAX_LINE_BYTES}-byte cap of pattern formats",
            )
        try:
            # (a byte order mark, as Windows tools start a text file with, is no part of it)
            line = value.decode("utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError as exc:
            raise _Reject("not_utf8", f"invalid UTF-8 at byte {exc.start}") from None
        try:
            record = self.lines.parse(line.rstrip("\r\n"))
        except LineError as exc:
            raise _Reject("bad_timestamp", str(exc)[:200]) from None
        except MatchTimeout as exc:
            raise _Reject("match_timeout", str(exc)) from None
        if record is None:
            raise _Reject("no_match", f"the line does not match format {self.lines.name}")
        return record

    def _parse_line(self, value: bytes) -> dict[str, Any]:
        try:
            # a byte order mark (a file written on Windows) would be read as part of the address
            line = value.decode("utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError as exc:
            # nginx escapes non-ASCII bytes itself, so raw high bytes mean a broken producer
            raise _Reject("not_utf8", f"invalid UTF-8 at byte {exc.start}") from None
        lines = line.strip().count("\n") if "\n" in line else 0
        if lines:
            # nginx and Apache escape a newline in what they log, so these are several log
            # lines in one record, and the pattern would read the first and drop the rest
            raise _Reject(
                "not_access_log",
                f"the record holds {lines + 1} lines: an access-log record is one line",
            )
        record = parse_combined(line)
        if record is None:
            raise _Reject(
                "not_access_log", "not an nginx/Apache combined or common access-log line"
            )
        time_local = record["timestamp"]
        try:
            epoch = parse_access_log_time(time_local)
        except ValueError:
            raise _Reject(
                "bad_timestamp",
                f"access-log time {time_local[:40]!r} is not dd/Mon/yyyy:HH:MM:SS +zzzz",
            ) from None
        try:
            record["timestamp"] = seconds_value(epoch)
        except CoercionError:
            raise _Reject(
                "bad_timestamp", f"access-log time {time_local[:40]!r} is out of range"
            ) from None
        return record

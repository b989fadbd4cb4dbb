"""The Event type, and the value coercions every decoder shares (timestamps above all).

An Event is what detectors see: a family, an event time in epoch seconds, the record's fields
normalised to the family's contract, and where the record came from (so alerts and dead
letters can point back at it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import compress, repeat
from operator import add, is_, itemgetter
from typing import Any, final


# final: the decoders tell an Event from a DeadLetter with `type(out) is Event` (quicker than
# isinstance per record), which a subclass would not pass
@final
@dataclass(slots=True)
class Event:
    family: str
    ts: float  # event time, epoch seconds (UTC)
    data: dict[str, Any]  # fields by contract name; extra fields of native records kept
    topic: str = ""
    partition: int = 0
    offset: int = -1

    def source(self) -> dict[str, Any]:
        """Where the record came from (for a repartitioned one: its original record)."""
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset}


# The ``data`` of a repartitioned source's progress mark (pipeline/repartition.py): an Event
# that says its source partition has shipped everything up to its offset, no later than its
# time. Told apart by identity; never given to a detector.
SOURCE_PROGRESS: dict[str, Any] = {}


class CoercionError(ValueError):
    """A value has the wrong type for its contract field. ``reason`` is the dead-letter reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


# Epoch values above these magnitudes are read as milliseconds, microseconds, nanoseconds.
# 1e11 seconds is the year 5138; 1e11 milliseconds is 1973, so the split is unambiguous for
# any realistic log timestamp.
_MS_THRESHOLD = 1e11
_US_THRESHOLD = 1e14
_NS_THRESHOLD = 1e17
_MAX_EPOCH = 253402300799.0  # 9999-12-31T23:59:59Z
MAX_EPOCH = _MAX_EPOCH  # the latest time a timestamp may say, to the fraction of a second
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# the range as exact distances from 1970 (a float of MAX_EPOCH + 1 us is MAX_EPOCH itself)
_LATEST = timedelta(seconds=_MAX_EPOCH)
_NO_TIME = timedelta(0)
MS_THRESHOLD = _MS_THRESHOLD  # a number of seconds this large is read as milliseconds


def epoch_from_number(value: float) -> float:
    if not math.isfinite(value):
        raise CoercionError("bad_timestamp", f"timestamp {value!r} is not a finite number")
    magnitude = abs(value)
    if magnitude >= _NS_THRESHOLD:
        value = value / 1e9
    elif magnitude >= _US_THRESHOLD:
        value = value / 1e6
    elif magnitude >= _MS_THRESHOLD:
        value = value / 1e3
    if value < 0 or value > _MAX_EPOCH:
        raise CoercionError("bad_timestamp", f"timestamp {value!r} is out of range")
    return float(value)


def seconds_value(epoch: float) -> float | str:
    """``epoch``, the seconds of a time a line format read (an access-log or a BSD syslog
    time), as the record's ``timestamp``, which ``parse_timestamp`` reads back as the same
    seconds: the number, or from ``MS_THRESHOLD`` on, where a number is read as milliseconds,
    its ISO 8601 text. CoercionError (``bad_timestamp``) outside 1970..``MAX_EPOCH``, the
    range of every other time."""
    if 0 <= epoch < _MS_THRESHOLD:
        return epoch
    if not 0 <= epoch <= _MAX_EPOCH:
        raise CoercionError("bad_timestamp", f"time {epoch!r} is out of range")
    return datetime.fromtimestamp(epoch, UTC).isoformat()


_ISO_CACHE: dict[str, float] = {}


def _other_formats(text: str) -> datetime | None:
    """Times that real JSON logs carry besides ISO 8601: nginx/Apache ``$time_local``
    (``26/Nov/2026:04:43:39 +0000``) and RFC 2822 / HTTP dates (``Thu, 26 Nov 2026 04:43:39
    GMT``). Tried only after ISO parsing failed, so they cost nothing on the common path."""
    if "/" in text and ":" in text:
        try:
            return datetime.strptime(text, "%d/%b/%Y:%H:%M:%S %z")
        except ValueError:
            pass
    if "," in text or " " in text:
        from email.utils import parsedate_to_datetime

        try:
            return parsedate_to_datetime(text)
        # OverflowError: a year beyond what a C int holds ("Thu, 26 Nov 99999999999 ...")
        except (TypeError, ValueError, IndexError, OverflowError):
            pass
    return None


def parse_timestamp(value: Any) -> float:
    """ISO 8601 (``Z`` or offset; naive means UTC), epoch seconds, ms, us or ns -> epoch seconds."""
    if isinstance(value, str):
        # The shape nearly every producer writes, "YYYY-MM-DDTHH:MM:SSZ", in as few steps as
        # possible: the minute's epoch (cached by _whole_seconds) plus the seconds.
        if len(value) == 20 and value[19] == "Z" and value[16] == ":":
            minute = _UTC_MINUTES.get(value[:16])
            if minute is not None:
                seconds = _SECONDS.get(value[17:19])
                if seconds is not None:
                    return minute + seconds
        # "YYYY-MM-DDTHH:MM:SS[.frac][zone]": parse the whole seconds, add the fraction;
        # busy streams share seconds, not milliseconds.
        if len(value) > 19 and value[4] == "-" and value[13] == ":" and value[19] in ".Z+-":
            rest = value[19:]
            frac = 0.0
            if rest[0] == ".":
                end = 1
                n = len(rest)
                # isdecimal: the digits float() reads (isdigit takes "²" and "①" too)
                while end < n and rest[end].isdecimal():
                    end += 1
                if end > 1:
                    frac = float(rest[:end])
                rest = rest[end:]
            if frac:
                whole = parse_timestamp(value[:19] + rest)
                # whole seconds are in range; with a fraction, the last of them is not
                if whole + frac > _MAX_EPOCH or whole == _MAX_EPOCH:
                    raise CoercionError(
                        "bad_timestamp", f"timestamp {value[:64]!r} is out of range"
                    )
                return whole + frac
        return _whole_seconds(value)
    if isinstance(value, bool):
        raise CoercionError("bad_timestamp", "timestamp is a boolean")
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:  # an int beyond any float (a default: in a binding's fields:)
            raise CoercionError("bad_timestamp", "timestamp is out of range") from None
        return epoch_from_number(number)
    raise CoercionError("bad_timestamp", f"timestamp has type {type(value).__name__}")


def parse_timestamps(values: list[Any]) -> tuple[list[float], list[int]]:
    """``parse_timestamp`` over a column: (epochs, positions that failed). A failed position
    holds 0.0; ``parse_timestamp`` of that value says why.

    A column of "YYYY-MM-DDTHH:MM:SSZ" strings, the shape nearly every producer writes, or of
    "YYYY-MM-DDTHH:MM:SS.fffZ" with any number of fraction digits (JavaScript's toISOString,
    Java's Instant, Go's RFC3339Nano), is read in a few C-level passes over the column (type,
    length, the minute, ":SS", the fraction) with parse_timestamp's own minute cache: the
    same epochs, added in the same order, without a Python call per value. Values of any
    other shape, and minutes not cached yet, go through ``parse_timestamp`` one by one.
    """
    epochs: list[float] | None = None
    shape = _column_shape(values)
    if shape is not None:
        seconds_of, fractions = shape
        prefixes = list(map(_MINUTE, values))
        minutes = list(map(_UTC_MINUTES.get, prefixes))
        if None in minutes:
            # A live stream's minutes are new as they come, and a batch holds all records
            # of most of its minutes: learn each new minute once, then take the column.
            _learn_utc_minutes(set(compress(prefixes, map(is_, minutes, repeat(None)))))
            minutes = list(map(_UTC_MINUTES.get, prefixes))
        # ":SSZ" (":SS." before a fraction) checks parse_timestamp's value[16] == ":" and
        # value[19] as well
        seconds = list(map(seconds_of[1].get, map(seconds_of[0], values)))
        try:
            whole = list(map(add, minutes, seconds))
            # parse_timestamp adds the fraction to the whole seconds' epoch: the same sums
            return (whole if fractions is None else list(map(add, whole, fractions))), []
        except TypeError:  # a None: a minute not cached yet, or another shape
            fracs = repeat(0.0) if fractions is None else fractions
            epochs = [
                0.0 if m is None or s is None else m + s + f
                for m, s, f in zip(minutes, seconds, fracs, strict=False)
            ]
    if epochs is None:
        epochs = [0.0] * len(values)
        todo: Any = range(len(values))
    else:
        todo = [i for i, e in enumerate(epochs) if e == 0.0]
    failed: list[int] = []
    for i in todo:
        try:
            epochs[i] = parse_timestamp(values[i])
        except CoercionError:
            failed.append(i)
    return epochs, failed


def _column_shape(
    values: list[Any],
) -> tuple[tuple[Callable[[str], str], dict[str, int]], list[float] | None] | None:
    """How parse_timestamps reads a column at once: (where its whole seconds are and what
    they may be, the fractions or None), or None when the column is of no single shape it
    reads that way."""
    if not values or set(map(type, values)) != {str}:
        return None
    lengths = set(map(len, values))
    if lengths == {20}:
        return (_SECOND_Z, _UTC_SECONDS), None
    if min(lengths) < 22 or set(map(_LAST, values)) != {"Z"}:
        return None
    # ".digits" then "Z" (ISO 8601's other decimal sign, the comma, is parse_timestamp's, and
    # float() would refuse it): parse_timestamp reads the digits with str.isdecimal and
    # float(), which take more than ASCII digits ("٣"); such a column is left to it
    if set(map(_DECIMAL_SIGN, values)) != {"."}:
        return None
    digits = "".join(map(_FRACTION_DIGITS, values))
    if not (digits.isascii() and digits.isdigit()):
        return None
    fractions = list(map(float, map(_FRACTION, values)))
    # (".000Z" too: parse_timestamp reads it as the whole seconds, the same float)
    return (_SECOND_Z, _UTC_SECONDS_DOT), fractions


_MINUTE = itemgetter(slice(0, 16))


def _learn_utc_minutes(prefixes: set[str]) -> None:
    """Put each "YYYY-MM-DDTHH:MM" of ``prefixes`` that parses, with every second of it in
    range, in ``_UTC_MINUTES`` (what ``_whole_seconds`` puts there for "...:SSZ")."""
    if len(_UTC_MINUTES) + len(prefixes) > _MINUTES_KEPT:
        _UTC_MINUTES.clear()
    for prefix in prefixes:
        if prefix[4] != "-" or prefix[13] != ":":
            continue
        minute = _iso_epoch(prefix + ":00Z")
        if minute is not None and 0 <= minute < _LAST_MINUTE:
            _UTC_MINUTES[prefix] = minute


_SECOND_Z = itemgetter(slice(16, 20))  # ":SSZ", or ":SS." before a fraction
_FRACTION = itemgetter(slice(19, -1))  # ".fff" of "...:SS.fffZ"
_FRACTION_DIGITS = itemgetter(slice(20, -1))
_LAST = itemgetter(-1)
_DECIMAL_SIGN = itemgetter(19)


# Whole seconds two digits long, as they appear in "...THH:MM:SS".
_SECONDS = {f"{s:02d}": s for s in range(60)}
# ":SSZ" -> SS, the end of "YYYY-MM-DDTHH:MM:SSZ" (parse_timestamps)
_UTC_SECONDS = {f":{s:02d}Z": s for s in range(60)}
# ":SS." -> SS, before the fraction of "YYYY-MM-DDTHH:MM:SS.fffZ"
_UTC_SECONDS_DOT = {f":{s:02d}.": s for s in range(60)}
# "YYYY-MM-DDTHH:MM" + zone -> epoch of that minute (None: not ISO 8601 as far as we know)
_MINUTE_CACHE: dict[str, float | None] = {}
# minutes kept by each cache (about three days of a live stream's minutes)
_MINUTES_KEPT = 4096
# "YYYY-MM-DDTHH:MM" -> epoch of that minute in UTC, for the "...:SSZ" shortcut in
# parse_timestamp and parse_timestamps' column sums. Only minutes whose every second, with
# any fraction, is in range are kept there, so neither needs a range check: not the last
# minute, whose last second plus a fraction is past MAX_EPOCH.
_UTC_MINUTES: dict[str, float] = {}
_LAST_MINUTE = _MAX_EPOCH - 59
_MISSING: Any = object()


def _whole_seconds(value: str) -> float:
    """``parse_timestamp`` for a string without a fraction to split off.

    A stream's timestamps are mostly distinct seconds, so caching whole strings misses; the
    minute they fall in repeats for about sixty of them. "...THH:MM:SS" is therefore read as
    the epoch of "...THH:MM:00" (parsed once per minute and zone, by the same ISO parser as
    any other time) plus SS. Anything else, or anything that minute does not parse, takes
    the general path, which decides what is accepted."""
    if len(value) >= 19 and value[16] == ":" and value[13] == ":" and value[4] == "-":
        seconds = _SECONDS.get(value[17:19])
        if seconds is not None:
            key = value[:16] + value[19:]
            minute: float | None = _MINUTE_CACHE.get(key, _MISSING)
            if minute is _MISSING:
                if len(_MINUTE_CACHE) >= _MINUTES_KEPT:
                    _MINUTE_CACHE.clear()
                minute = _MINUTE_CACHE[key] = _iso_epoch(value[:17] + "00" + value[19:])
                if (
                    minute is not None
                    and 0 <= minute < _LAST_MINUTE
                    and len(value) == 20
                    and value[19] == "Z"
                ):
                    if len(_UTC_MINUTES) >= _MINUTES_KEPT:
                        _UTC_MINUTES.clear()
                    _UTC_MINUTES[value[:16]] = minute
            if minute is not None:
                epoch = minute + seconds
                if 0 <= epoch <= _MAX_EPOCH:
                    return epoch
    return _parse_text(value)


def _iso_epoch(value: str) -> float | None:
    """The ISO 8601 branch of ``_parse_text``, unchecked for range; None if not ISO 8601, or
    if the minute is not a whole second (a zone with a fraction of a second: adding SS to
    it could round differently from parsing the whole string)."""
    text = value.strip()
    if not text:
        return None
    try:
        if text[-1] in "zZ":
            text = text[:-1] + "+00:00"
        dt = datetime.fromisoformat(text.replace(" ", "T", 1) if "T" not in text else text)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        epoch = dt.timestamp()
    except (ValueError, OverflowError):
        return None
    return epoch if epoch.is_integer() else None


def _parse_text(value: str) -> float:
    """Any time as text: ISO 8601, epoch numbers, access-log and RFC 2822 times."""
    cached = _ISO_CACHE.get(value)
    if cached is not None:
        return cached
    text = value.strip()
    if not text:
        raise CoercionError("bad_timestamp", "timestamp is empty")
    # Epoch numbers as strings have no date separators; trying float() on every ISO
    # string would cost an exception per record.
    if "-" not in text[1:] and ":" not in text and "T" not in text:
        try:
            return epoch_from_number(float(text))
        except ValueError:
            pass
    dt: datetime | None
    try:
        if text[-1] in "zZ":
            text = text[:-1] + "+00:00"
        dt = datetime.fromisoformat(text.replace(" ", "T", 1) if "T" not in text else text)
    except ValueError:
        dt = _other_formats(text)
        if dt is None:
            raise CoercionError(
                "bad_timestamp",
                f"timestamp {value[:64]!r} is not ISO 8601, epoch, access-log or RFC 2822 time",
            ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    # (what dt.timestamp() computes, compared before it is rounded to a float)
    since = dt - _UNIX_EPOCH
    if not (_NO_TIME <= since <= _LATEST):
        raise CoercionError("bad_timestamp", f"timestamp {value[:64]!r} is out of range")
    epoch = since.total_seconds()
    # Busy streams repeat the same string many times (access-log and RFC 2822 times are
    # slow to parse): remember recent strings.
    if len(_ISO_CACHE) >= 4096:
        _ISO_CACHE.clear()
    _ISO_CACHE[value] = epoch
    return epoch


_TRUE = frozenset({"true", "1", "yes", "y", "t", "success", "succeeded", "ok", "accepted"})
_FALSE = frozenset(
    {"false", "0", "no", "n", "f", "failure", "failed", "fail", "denied", "rejected"}
)


def coerce_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise CoercionError("wrong_type", f"expected a boolean, got {_describe(value)}")


def coerce_int(value: Any) -> int:
    if isinstance(value, bool):
        raise CoercionError("wrong_type", "expected an integer, got a boolean")
    if isinstance(value, int):
        return _int64(value)
    if isinstance(value, float) and value.is_integer():
        return _int64(int(value))
    if isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            pass
        else:
            return _int64(number)
    raise CoercionError("wrong_type", f"expected an integer, got {_describe(value)}")


def coerce_field(name: str, coerce: Callable[[Any], Any], value: Any) -> Any:
    """``coerce(value)`` for the field ``name``: its CoercionError says which field."""
    try:
        return coerce(value)
    except CoercionError as exc:
        raise CoercionError(exc.reason, f"field {name!r}: {exc.detail}") from None


def _int64(number: int) -> int:
    # orjson (alert log, dead letters, checkpoints) cannot write integers beyond 64 bits: a
    # status_code of 1e308 would otherwise decode, then crash every later write of it.
    if not -(2**63) <= number < 2**63:
        raise CoercionError("wrong_type", f"integer {str(number)[:24]}... is out of range")
    return number


def coerce_number(value: Any) -> float:
    if isinstance(value, bool):
        raise CoercionError("wrong_type", "expected a number, got a boolean")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise CoercionError(
                "wrong_type", f"expected a number, got {_describe(value)}"
            ) from None
    else:
        raise CoercionError("wrong_type", f"expected a number, got {_describe(value)}")
    if not math.isfinite(number):
        raise CoercionError("wrong_type", f"expected a finite number, got {value!r}")
    return number


def coerce_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise CoercionError("wrong_type", f"expected a string, got {_describe(value)}")


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if isinstance(value, dict | list):
        return f"an {'object' if isinstance(value, dict) else 'array'}"
    return f"{type(value).__name__} {str(value)[:40]}"


COERCERS = {
    "string": coerce_string,
    "int": coerce_int,
    "number": coerce_number,
    "bool": coerce_bool,
}

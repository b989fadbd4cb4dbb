"""Text lines read by pattern: ``format: {regex: ...}`` and the named formats ``sshd`` and
``syslog``.

A line is matched against one compiled regex; its named groups become the record's fields
(a group that did not take part is absent), and then the binding's field mapping and the
contract's coercions apply as they do to JSON. A line the regex does not match is dead-lettered
``no_match``; a line longer than ``MAX_LINE_BYTES`` is dead-lettered ``too_large`` before any
regex sees it.

    Nov 29 17:38:53 bastion sshd[4121]: Failed password for root from 203.0.113.9 port 22 ssh2
    ^ syslog time   ^ host  ^app ^pid   ^ message (sshd: event, user, address, port, method)

A regex is compiled once, when the config is read. A pattern that can backtrack
catastrophically (a repeated group that itself holds an unbounded repeat: ``(a+)+``,
``(.*)*``, ``(\\w+\\s?)*$``) is refused there (``backtracking_risk``). That check cannot see
every slow pattern (``(.*) (.*) (.*)x`` is cubic: 5 s on a line of 2,000 spaces), so a user's
regex also runs with a time budget per line (``MATCH_BUDGET``, with the ``regex`` module's
``timeout``: the standard ``re`` cannot be interrupted); a line over it is dead-lettered
``match_timeout``, and one hostile line cannot stall a partition. The named formats are ours,
vetted, and run on ``re``.

BSD syslog times carry no year and no zone: a format takes ``year`` and ``timezone``
(default: the current year in UTC; a month later than the current one is last year's, so a
December line read in January is not dated eleven months ahead).
"""

from __future__ import annotations

import calendar
import importlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import regex

from ..events import CoercionError, coerce_field, coerce_int, seconds_value

# The standard regex parser (re._parser since 3.11; sre_parse, its old name, warns that it
# is deprecated). Imported by name: typeshed describes `re` as a module, without _parser.
_sre_parse = importlib.import_module("re._parser")

# Lines longer than this are not matched at all (dead letter ``too_large``): syslog lines are
# at most 8 KiB in practice (rsyslog's default maxMessageSize), and a bound on the input is
# what keeps even a polynomial regex from taking seconds on one line.
MAX_LINE_BYTES = 16 * 1024

_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
# a repeat that may run this many times or more counts as unbounded
_UNBOUNDED = 16
# Seconds one line may take in a user's regex: an ordinary line takes microseconds; the
# margin is for a process descheduled mid-match (a budget is wall time).
MATCH_BUDGET = 0.05


class LineError(ValueError):
    """A matched line whose values cannot be read (a BSD time such as Feb 30)."""


class MatchTimeout(Exception):
    """A line that a user's regex did not finish matching within its budget."""


def backtracking_risk(pattern: str) -> str | None:
    """Why ``pattern`` may backtrack catastrophically, or None. A repeat that may run many
    times (``*``, ``+``, ``{n,}``) over something that itself holds a repeat (``(a+)+``,
    ``(\\w+\\s?)*``, ``(.*)*``) lets the engine split one run of text among the repeats in
    exponentially many ways before it gives up on a line that does not match."""
    tree = _sre_parse.parse(pattern)

    def has_repeat(items: Any) -> bool:
        """Whether ``items`` hold a repeat that may run more than once, at any depth."""
        for op, arg in items:
            name = str(op)
            if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
                inner = [arg[2]]
                if arg[1] > 1:
                    return True
            elif name == "SUBPATTERN":
                inner = [arg[-1]]
            elif name == "BRANCH":
                inner = list(arg[1])
            elif name == "ATOMIC_GROUP":
                inner = [arg]
            else:
                continue
            if any(map(has_repeat, inner)):
                return True
        return False

    def walk(items: Any) -> str | None:
        for op, arg in items:
            name = str(op)
            if name in ("MAX_REPEAT", "MIN_REPEAT"):
                low, high, body = arg
                if high >= _UNBOUNDED and has_repeat(body):
                    return "a repeated group holds a repeat of its own (like (a+)+ or (.*)*)"
                found = walk(body)
            elif name == "SUBPATTERN":
                found = walk(arg[-1])
            elif name == "BRANCH":
                found = next((r for r in map(walk, arg[1]) if r), None)
            else:
                found = None
            if found:
                return found
        return None

    return walk(tree)


def compile_pattern(pattern: str) -> Any:
    """``pattern`` compiled (by the ``regex`` module, for its match timeout), or ValueError
    saying why it is refused."""
    try:
        re.compile(pattern)  # the standard syntax, which backtracking_risk parses
        compiled = regex.compile(pattern)
    except (re.error, regex.error) as exc:
        raise ValueError(f"not a valid regex: {exc}") from None
    if not compiled.groupindex:
        raise ValueError("the regex has no named groups: name each field, as in (?P<username>\\S+)")
    risk = backtracking_risk(pattern)
    if risk:
        raise ValueError(f"the regex may backtrack catastrophically: {risk}")
    return compiled


@dataclass(frozen=True, slots=True)
class SyslogClock:
    """Dates a BSD syslog time (``Nov 29 17:38:53``): a fixed year, or the current year with a
    later month taken as last year's; wall time in ``timezone``."""

    year: int | None = None
    timezone: str = "UTC"
    now: Callable[[], float] = time.time

    def epoch(self, month: str, day: str, clock: str) -> float | str:
        mon = _MONTHS.get(month)
        if mon is None:
            raise LineError(f"month {month!r} is not Jan..Dec")
        try:
            hour, minute, second = (int(p) for p in clock.split(":"))
            zone = None if self.timezone == "UTC" else ZoneInfo(self.timezone)
            year = self.year
            if year is None:
                today = datetime.fromtimestamp(self.now(), zone or ZoneInfo("UTC"))
                year = today.year - 1 if mon > today.month else today.year
            if zone is None:
                datetime(year, mon, int(day), hour, minute, second)  # Feb 30 is no Mar 2
                epoch = float(calendar.timegm((year, mon, int(day), hour, minute, second)))
            else:
                epoch = datetime(year, mon, int(day), hour, minute, second, tzinfo=zone).timestamp()
        except ValueError as exc:
            raise LineError(f"{month} {day} {clock} is not a date: {exc}") from None
        try:
            return seconds_value(epoch)
        except CoercionError:
            raise LineError(f"{month} {day} {clock} of {year} is out of range") from None


class LineFormat:
    """One compiled line format: ``parse(line)`` -> the record's fields, or None for a line
    it does not match (raises LineError for a matched line whose values cannot be read)."""

    def __init__(
        self,
        name: str,
        pattern: Any,
        finish: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        budget: float | None = None,
    ) -> None:
        self.name = name
        self.regex = pattern
        self._match = pattern.match
        self._finish = finish
        self.budget = budget  # seconds per line (a ``regex`` module pattern), or None

    def parse(self, line: str) -> dict[str, Any] | None:
        if self.budget is None:
            match = self._match(line)
        else:
            try:
                match = self._match(line, timeout=self.budget)
            except TimeoutError:
                raise MatchTimeout(
                    f"format {self.name} took over {self.budget * 1000:g} ms "
                    f"on a {len(line)}-character line"
                ) from None
        if match is None:
            return None
        fields = {k: v for k, v in match.groupdict().items() if v is not None}
        return self._finish(fields) if self._finish is not None else fields

    def __repr__(self) -> str:
        return f"LineFormat({self.name!r})"


def regex_format(pattern: str) -> LineFormat:
    """``format: {regex: ...}``: the named groups are the fields, as strings; a line gets
    ``MATCH_BUDGET`` seconds."""
    return LineFormat("regex", compile_pattern(pattern), budget=MATCH_BUDGET)


# -- syslog: RFC 3164 (BSD) and RFC 5424 ----------------------------------------------------

_PRI = r"(?:<(?P<pri>\d{1,3})>)?"
_BSD_TIME = r"(?P<month>[A-Z][a-z]{2}) {1,2}(?P<day>\d{1,2}) (?P<clock>\d\d:\d\d:\d\d)"
_ISO_TIME = r"(?P<iso>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d))"
# RFC 3164 (and what rsyslog writes to files: no PRI, and with RFC3339 times the ISO stamp)
_RFC3164 = (
    _PRI + r"(?:" + _BSD_TIME + "|" + _ISO_TIME + r") (?P<hostname>\S+) "
    r"(?P<app_name>[^\s\[:]+)(?:\[(?P<procid>[^\]\s]{1,32})\])?: ?(?P<message>.*)"
)
# RFC 5424: <PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD]... MSG ("-" is nil)
_RFC5424 = (
    r"<(?P<pri>\d{1,3})>1 (?P<iso>-|\S+) (?P<hostname>\S+) (?P<app_name>\S+) "
    r"(?P<procid>\S+) (?P<msgid>\S+) "
    r"(?P<structured_data>-|(?:\[(?:[^\]\\]|\\.)*\])+)(?: \ufeff?(?P<message>.*))?\Z"
)
_SYSLOG = re.compile(r"(?s:" + _RFC5424 + ")|(?s:" + _RFC3164.replace("?P<", "?P<b_") + ")")


def _syslog_time(fields: dict[str, Any], clock: SyslogClock, prefix: str = "") -> None:
    """Sets fields["timestamp"] from the BSD or ISO time groups (removing them)."""
    iso = fields.pop(prefix + "iso", None)
    if iso is not None:
        if iso != "-":  # RFC 5424 nil time: no timestamp (dead letter missing_field)
            fields["timestamp"] = iso
        return
    month = fields.pop(prefix + "month", None)
    if month is not None:
        fields["timestamp"] = clock.epoch(
            month, fields.pop(prefix + "day"), fields.pop(prefix + "clock")
        )


def syslog_format(clock: SyslogClock) -> LineFormat:
    """``format: syslog``: RFC 5424 or RFC 3164 lines -> timestamp, hostname, app_name,
    procid, msgid, structured_data, message, and facility and severity from the PRI."""

    def finish(fields: dict[str, Any]) -> dict[str, Any]:
        if "b_hostname" in fields or "b_message" in fields:  # the RFC 3164 branch
            fields = {k[2:]: v for k, v in fields.items()}
        _syslog_time(fields, clock)
        for key in ("procid", "msgid", "structured_data", "hostname", "app_name"):
            if fields.get(key) == "-":
                del fields[key]
        pri = fields.pop("pri", None)
        if pri is not None:
            fields["facility"] = int(pri) >> 3
            fields["severity"] = int(pri) & 7
        fields.setdefault("message", "")
        return fields

    return LineFormat("syslog", _SYSLOG, finish)


# -- sshd: OpenSSH's authentication lines -> auth-logs ---------------------------------------

_SSHD_PREFIX = (
    _PRI + r"(?:" + _BSD_TIME + "|" + _ISO_TIME + r") (?P<hostname>\S+) "
    r"sshd(?:-session)?\[(?P<pid>\d+)\]: "
)
_SSHD_EVENTS = (
    r"(?P<outcome>Failed|Accepted) (?P<method>password|publickey|keyboard-interactive/pam|"
    r"keyboard-interactive|hostbased|none) for (?P<invalid>invalid user )?(?P<username>.*?) "
    r"from (?P<ip_address>\S+) port (?P<port>\d+)(?: ssh2)?(?P<rest>.*)"
    r"|(?P<invalid_user>Invalid user) (?P<username2>.*?) from (?P<ip_address2>\S+)"
    r"(?: port (?P<port2>\d+))?"
    r"|(?P<closed>Connection closed|Disconnected) by (?:authenticating|invalid) user "
    r"(?P<username3>.*?) (?P<ip_address3>\S+) port (?P<port3>\d+) \[preauth\]"
)
_SSHD = re.compile(_SSHD_PREFIX + r"(?:" + _SSHD_EVENTS + r")$")


def sshd_format(clock: SyslogClock) -> LineFormat:
    """``format: sshd``: OpenSSH's authentication lines -> auth-logs fields: username,
    ip_address, success, port, method, event (failed, accepted, invalid_user,
    closed_preauth), invalid_user, hostname, pid, timestamp."""

    def finish(fields: dict[str, Any]) -> dict[str, Any]:
        _syslog_time(fields, clock)
        fields.pop("pri", None)
        outcome = fields.pop("outcome", None)
        if outcome is not None:
            fields["success"] = outcome == "Accepted"
            fields["event"] = outcome.lower()
            fields["invalid_user"] = fields.pop("invalid", None) is not None
            fields.pop("rest", None)
        elif fields.pop("invalid_user", None) is not None:
            fields.update(
                username=fields.pop("username2"),
                ip_address=fields.pop("ip_address2"),
                success=False,
                event="invalid_user",
                invalid_user=True,
            )
            if "port2" in fields:
                fields["port"] = fields.pop("port2")
        else:
            closed = fields.pop("closed")
            fields.update(
                username=fields.pop("username3"),
                ip_address=fields.pop("ip_address3"),
                port=fields.pop("port3"),
                success=False,
                event="closed_preauth"
                if closed.startswith("Connection")
                else "disconnected_preauth",
                invalid_user=False,
            )
        # coerce_int: a port or pid beyond 64 bits is a wrong_type dead letter (no writer of an
        # event takes such an integer)
        if "port" in fields:
            fields["port"] = coerce_field("port", coerce_int, fields["port"])
        fields["pid"] = coerce_field("pid", coerce_int, fields["pid"])
        return fields

    return LineFormat("sshd", _SSHD, finish)


NAMED_FORMATS: dict[str, Callable[[SyslogClock], LineFormat]] = {
    "sshd": sshd_format,
    "syslog": syslog_format,
}


def named_format(name: str, *, year: int | None = None, timezone: str = "UTC") -> LineFormat:
    """A format shipped with streamproc, by name; ValueError for an unknown name or zone."""
    if name not in NAMED_FORMATS:
        raise ValueError(f"unknown line format {name!r}")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {timezone!r}") from None
    return NAMED_FORMATS[name](SyslogClock(year, timezone))

"""sql_injection: requests whose endpoint (path and query) carries SQL injection.

Pipeline per request::

    raw endpoint --prefilter--> (most requests stop here: no quote, %, +, ;, (, #, `, \\, |,
        |                        whitespace, '--' or '/*' means nothing to inject with)
        +--> each parameter value and suspicious path segment: decode (below), then, if it
        |    holds a quote, a separator, '(', ';' or a comment, lex it as SQL outside quotes,
        |    inside '...' and inside "..." and judge the token pattern (_sql_tokens.py):
        |    tautologies with or without quotes, quote-then-comment, unions, stacked
        |    queries, delays, ORDER BY probes
        v
    decode: percent-decode up to 3 times ('+' as space on the first pass, %uXXXX too),
            NUL bytes dropped, NFKC for non-ASCII (fullwidth quotes), case-folded
        |
        +--> comment truncation is judged here (admin'-- , 1')#), before comments go
        v
    strip comments: /*...*/ -> ' ' (MySQL /*!50000 ...*/ keeps its body: it executes),
                    -- and # up to the end of the parameter; collapse whitespace
        v
    signatures (a second opinion): UNION SELECT, stacked queries, error-based functions,
                hex and CHAR() encodings, catalog probes, blind-boolean functions, file and
                command functions

Both are written for *context*, not keywords: ``select``, ``union``, ``or``, ``drop``,
names like O'Brien, JSON and base64 are everyday query strings. A tautology is a logic
operator right after the closed value, then literals compared; UNION needs a SQL-shaped select
list; a stacked query needs ``;`` and a statement; hex needs SQL around it (an Ethereum address
is hex too). The labelled corpora in tests/fuzz/test_sqli_corpus.py and
tests/fuzz/sqli_grammar_corpus.py measure recall and false positives.

Alerting: once per (ip_address, incident); further matching requests from that address within
``realert`` seconds are counted, not re-alerted. Known scanner user agents (sqlmap, Havij...)
are named in the evidence.
"""

from __future__ import annotations

import re
import unicodedata
from itertools import compress
from typing import Any
from urllib.parse import unquote, unquote_plus

from ..alerts import Alert
from ..events import Event
from ._common import Sweeper, clip, iso
from ._sql_tokens import Finding, judge
from ._windows import KeyedState
from .base import Detector, Prefilter, register

# Characters without which no SQL injection can be written into a URL (raw, before decoding).
_SUSPICIOUS = frozenset("'\"%;(#`\\| \t\n\r+")

_PRE = r"(?:['\"`)]|\b\d+\b)\s*"  # what closes the application's value: quote, paren, number
_OP = r"(?:(?:or|and|xor)\b|\|\||&&)"

_FUNCS = (
    r"\s*\(*\s*(?:select|ascii|ord|substr|substring|mid|length|char_length|len|if|iif|"
    r"case|exists|count|database|user|version|rand|sleep|benchmark|pg_sleep|updatexml|"
    r"extractvalue|unicode|hex|bin|instr|locate|position|left|right)\b\s*[(\s]"
)

SIGNATURES: dict[str, str] = {
    "blind_boolean": rf"{_PRE}{_OP}{_FUNCS}",
    "union_select": (
        r"\bunion(?:\s+(?:all|distinct))?\s*\(?\s*select\s*(?:\(|\*|null\b|\d|@|['\"`]|0x|"
        r"(?:distinct|all|top)\b|[\w$]+\(|[\w.`$]+\s*(?:,|\bfrom\b|\bas\b|\|\||\+))"
    ),
    "stacked_query": (
        r";\s*(?:drop\s+(?:table|database|schema|user|view|index|procedure|function)\b"
        r"|delete\s+from\b|insert\s+into\b|update\s+[\w.`\"\[\]]+\s+set\b"
        r"|truncate\s+(?:table\s+)?[\w`\"]|alter\s+(?:table|user|login|database|system)\b"
        r"|create\s+(?:or\s+replace\s+)?(?:table|user|login|database|procedure|function|trigger)\b"
        r"|exec(?:ute)?\s*(?:\(|@|xp_|sp_|master\.|immediate\b)|declare\s+@"
        r"|shutdown\b|select\s+\S.{0,200}?\bfrom\b|select\s+(?:@@|pg_sleep|sleep|benchmark|\d|"
        r"user|version|current_user|database|\*|null)"
        r"|waitfor\s|grant\s+\w|set\s+@|call\s+\w+\s*\(|copy\s+\w.{0,80}\bprogram\b)"
    ),
    "error_based": (
        r"\b(?:extractvalue|updatexml|xmltype|gtid_subset|gtid_subtract|st_latfromgeohash|"
        r"polygon|multipoint|geometrycollection)\s*\(\s*(?:\d|\(|['\"]|concat|select|0x|@@)"
        r"|\bexp\s*\(\s*~|\bfloor\s*\(\s*rand\s*\(|\butl_inaddr\.get_host_\w+\s*\("
        r"|\bctxsys\.drithsx\.sn\s*\(|\bconvert\s*\(\s*int\s*,|\bcast\s*\(\s*(?:\(\s*select|"
        r"@@|version|chr|char|concat|current_user|user\b)"
    ),
    "hex_encoding": (
        r"\b(?:select|union|where|having|like|concat|concat_ws|unhex|or|and|load_file|into|"
        r"values|in)\b[^&]{0,40}?\b0x[0-9a-f]{2,}\b|\bunhex\s*\(\s*['\"]?[0-9a-f]{4,}"
    ),
    "char_encoding": (
        r"\b(?:n?char|chr)\s*\(\s*\d{1,3}\s*\)\s*(?:\+|\|\||,|\))\s*(?:n?char|chr)\s*\("
        r"|\bn?char\s*\(\s*\d{1,3}\s*(?:,\s*\d{1,3}\s*){2,}\)"
        r"|(?:\bselect|\bunion|\bor|\band|['\"]\s*(?:\+|\|\|))\s*\(?\s*(?:n?char|chr)\s*\(\s*\d"
    ),
    "catalog_probe": (
        r"\binformation_schema\b|\b(?:mysql\.(?:user|db)|sys\.(?:tables|objects|columns|"
        r"databases|sql_logins|user_summary|schemas)|sysobjects|syscolumns|sysdatabases|"
        r"pg_(?:catalog|shadow|user|tables|database|namespace)|sqlite_master|sqlite_schema|"
        r"all_tables|all_tab_columns|user_tables|user_tab_columns|dba_users|msysobjects|"
        r"master\.\.sysdatabases)\b|@@(?:version|datadir|hostname|basedir|servername)\b"
    ),
    "file_or_command": (
        r"\bload_file\s*\(|\binto\s+(?:out|dump)file\b|\bxp_cmdshell\b"
        r"|\bsp_(?:executesql|oacreate|makewebtask|configure|password)\b|\bopenrowset\s*\("
        r"|\bopendatasource\s*\(|\butl_http\.request\b|\bdbms_\w+\.\w+\s*\("
        r"|\bpg_read_file\s*\(|\blo_import\s*\(|\bcopy\s+\w+\s+(?:from|to)\s+program\b"
    ),
    "subquery": (
        r"\(\s*select\s+(?:\d|null\b|@@|\*|count\s*\(|user\b|version|database|sleep|pg_sleep|"
        r"concat|char|ascii|substr|if\s*\(|case\b|\w+\s+from\s+\w)"
    ),
    # column-count probes (ORDER BY 10) and GROUP BY ... HAVING 1=1 error probes; comments
    # are already stripped here, so "1 order by 10--" reads "1 order by 10"
    "order_by_probe": r"['\"`)]\s*(?:order|group)\s+by\s+\d+|['\"`]\s*having\s+\d+\s*=\s*\d+"
    r"|\border\s+by\s+\d+\s*(?:--|#|;|/\*)"
    r"|(?:^|[=&])\s*-?\d+\s+(?:order|group)\s+by\s+\d+\s*(?:$|&)"
    r"|['\"`]\s*group\s+by\s+[\w.`,\s]{1,80}?\bhaving\s+\d+\s*=\s*\d+",
    "string_concat": r"['\"]\s*(?:\|\||\+)\s*\(?\s*(?:select\b|char\s*\(|chr\s*\(|@@|"
    r"(?:sleep|pg_sleep|dbms_\w+)\b)",
}

# A signature's regex runs only if the normalised text contains one of its tokens: substring
# tests cost nanoseconds, the regexes microseconds.
_GATES: dict[str, tuple[str, ...]] = {
    "blind_boolean": ("or", "and", "||", "&&"),
    "union_select": ("union",),
    "stacked_query": (";",),
    "error_based": (
        "extractvalue",
        "updatexml",
        "xmltype",
        "gtid_",
        "st_latfromgeohash",
        "polygon",
        "multipoint",
        "geometrycollection",
        "exp",
        "floor",
        "utl_inaddr",
        "ctxsys",
        "convert",
        "cast",
    ),
    "hex_encoding": ("0x", "unhex"),
    "char_encoding": ("char", "chr"),
    "catalog_probe": (
        "information_schema",
        "mysql.",
        "sys",
        "pg_",
        "sqlite_",
        "all_tab",
        "user_tab",
        "dba_users",
        "master.",
        "@@",
    ),
    "file_or_command": (
        "load_file",
        "outfile",
        "dumpfile",
        "xp_cmdshell",
        "sp_",
        "openrowset",
        "opendatasource",
        "utl_http",
        "dbms_",
        "pg_read_file",
        "lo_import",
        "program",
    ),
    "subquery": ("select",),
    "order_by_probe": (" by ", "having"),
    "string_concat": ("||", "+"),
}
assert set(_GATES) == set(SIGNATURES)

# judged on the decoded text *before* comments are removed
_TRUNCATION = re.compile(r"\w['\"`]\s*\)*\s*(?:--|#|/\*|;\s*(?:--|#|$)|\x00)")


def _gate(tokens: tuple[str, ...]) -> Any:
    """``lambda t: tok1 in t or tok2 in t ...``: one call instead of a generator per test."""
    return eval("lambda t: " + " or ".join(f"{tok!r} in t" for tok in tokens))


_EACH = tuple((name, _gate(_GATES[name]), re.compile(rx)) for name, rx in SIGNATURES.items())
_VERSIONED = re.compile(r"/\*!\d*")
_BLOCK_COMMENT = re.compile(r"/\*.*?(?:\*/|$)", re.S)
_LINE_COMMENT = re.compile(r"(?:--|#)[^&\n]*")
_SPACE = re.compile(r"\s+")
_PCT_U = re.compile(r"%u([0-9a-fA-F]{4})")

SCANNERS = (
    "sqlmap",
    "havij",
    "sqlninja",
    "bsqlbf",
    "pangolin",
    "absinthe",
    "jsql",
    "sqlsus",
    "marathon",
    "safe3",
    "nikto",
    "acunetix",
    "netsparker",
    "w3af",
    "arachni",
    "appscan",
    "nessus",
    "openvas",
    "burp",
    "zaproxy",
    "owasp zap",
    "nuclei",
    "wapiti",
    "skipfish",
    "vega",
    "webinspect",
    "dirbuster",
    "masscan",
    "zgrab",
    "ghauri",
)


def decode(text: str) -> str:
    """Percent-decoded up to 3 times ('+' as space first, %uXXXX too), NUL dropped, NFKC for
    non-ASCII, case-folded: what the database would read, comments still in."""
    for i in range(3):
        if "%" not in text and (i or "+" not in text):
            break
        if "%u" in text or "%U" in text:
            text = _PCT_U.sub(lambda m: chr(int(m.group(1), 16)), text)
        decoded = unquote_plus(text) if i == 0 else unquote(text)
        if decoded == text:
            break
        text = decoded
    if "\x00" in text:
        text = text.replace("\x00", " ")
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return text.casefold()


def normalise(endpoint: str) -> tuple[str, bool]:
    """(normalised text, comment truncation seen) for an endpoint that passed the prefilter."""
    text = decode(endpoint)
    truncated = (
        "--" in text or "#" in text or "/*" in text or ";" in text or "\x00" in text
    ) and _truncates(text)
    if "/*" in text:
        text = _BLOCK_COMMENT.sub(" ", _VERSIONED.sub(" ", text))
    if "*/" in text:  # the end of a versioned comment whose start was replaced
        text = text.replace("*/", " ")
    if "--" in text or "#" in text:
        text = _LINE_COMMENT.sub(" ", text)
    text = _SPACE.sub(" ", text)
    return text, truncated


def _truncates(text: str) -> bool:
    """A quote that closes the application's string, then a comment: ``admin'--``.

    The quote must be unbalanced within its parameter (an odd count of that quote up to
    it): in ``q='single quoted' -- great`` the user's own quotes pair up, nothing is closed.
    """
    for m in _TRUNCATION.finditer(text):
        quote_at = m.start() + 1
        q = text[quote_at]
        start = max(
            text.rfind("&", 0, quote_at),
            text.rfind("?", 0, quote_at),
            text.rfind("=", 0, quote_at),
            text.rfind("/", 0, quote_at),
        )
        if text.count(q, start + 1, quote_at + 1) % 2 == 1:
            return True
    return False


def suspicious(endpoint: str) -> bool:
    """The prefilter: False means the endpoint cannot carry SQL injection."""
    return (not _SUSPICIOUS.isdisjoint(endpoint)) or "--" in endpoint or "/*" in endpoint


def _endpoint_suspicious(data: dict[str, Any]) -> bool:
    return suspicious(data["endpoint"])


# ``suspicious`` as one pattern: a suspicious character, "--" or "/*"
_SUSPICIOUS_SEARCH = re.compile(
    "[" + "".join(f"\\x{ord(c):02x}" for c in sorted(_SUSPICIOUS)) + "]|--|/\\*"
).search


def _endpoint_matches_column(frame: Any) -> Any:
    """The records whose endpoint ``match`` names something in: ``process`` passes every
    other by, without a change. Narrower than the prefilter (a suspicious endpoint): most
    suspicious ones are ordinary query strings ("?q=running+shoes"), and ``match`` is a
    function of the endpoint alone, remembered for those that repeat, where making the
    record's Event for ``process`` costs several times the lookup."""
    # ``endpoint`` is a required string of the contract: a str in every record of a frame
    endpoints = frame.column("endpoint")
    picked = [False] * len(endpoints)
    for i in suspicious_rows(endpoints):
        names = _MATCHED.get(endpoints[i])
        picked[i] = bool(match(endpoints[i]) if names is None else names)
    return picked


def suspicious_rows(endpoints: list[str]) -> list[int]:
    """The positions of the endpoints ``suspicious`` passes, in order: the endpoints joined
    by NUL (not suspicious, and the start of no "--" or "/*") and read together as one array
    of bytes, where a regex search (``_SUSPICIOUS_SEARCH``) tries each character of each
    endpoint in turn (~1 us an endpoint of 30 characters). One at a time, as before, if an
    endpoint is not ASCII or holds a NUL."""
    import numpy as np

    text = "\x00".join(endpoints)
    if text.isascii():
        raw = text.encode("ascii")
        b = np.frombuffer(raw, dtype=np.uint8)
        nul = np.flatnonzero(b == 0)  # where each endpoint but the last ends
        if len(nul) == len(endpoints) - 1:
            flagged = np.frombuffer(raw.translate(_FLAGS), dtype=bool).copy()
            dash, slash = b == _DASH, b == _SLASH
            flagged[:-1] |= (dash[:-1] & dash[1:]) | (slash[:-1] & (b[1:] == _STAR))
            rows = np.searchsorted(nul, np.flatnonzero(flagged), side="right").tolist()
            return list(dict.fromkeys(rows))
    return list(compress(range(len(endpoints)), map(_SUSPICIOUS_SEARCH, endpoints)))


_DASH, _SLASH, _STAR = ord("-"), ord("/"), ord("*")
# each byte: 1 for a suspicious character, else 0 (read as booleans)
_FLAGS = bytes(chr(i) in _SUSPICIOUS for i in range(256))


# endpoint -> signature names, for endpoints that pass the prefilter. Ordinary query strings
# pass it too ("?q=running+shoes": the '+'), and popular ones repeat: in the bench's API
# stream 5.8k of 88k requests pass, five endpoints make 4.3k of them, and each costs ~17 us
# of regex work. Cleared when full, so hostile unique endpoints cannot grow it.
_MATCHED: dict[str, tuple[str, ...]] = {}
_MATCHED_CAP = 4096


# A decoded value reaches the lexer only if it holds one of these: without a quote, a
# separator, a parenthesis, a semicolon or a comment, a value is one token and changes nothing.
_LEXABLE = frozenset("'\"( \t\n\r\x0b\x0c;#")


def _raw_values(endpoint: str) -> list[str]:
    """The places a value can be injected: each query parameter's value, each path segment
    with a suspicious character and, where a path holds ``/*``, the path from the segment
    before the first suspicious one (``/items/1/**/or/**/1=1`` is one value whose comments'
    slashes split it)."""
    path, _, query = endpoint.partition("?")
    values = [v.partition("=")[2] or v for v in query.split("&")] if query else []
    segments = path.split("/")
    values += (seg for seg in segments if suspicious(seg))
    if "/*" in path:
        for i, seg in enumerate(segments):
            if suspicious(seg) or seg.startswith("*"):
                values += ("/".join(segments[j:]) for j in range(max(i - 1, 1), i + 1))
                break
    return values


_CONTEXTS = {"none": "outside quotes", "'": "inside '...'", '"': 'inside "..."'}


def findings(endpoint: str) -> list[Finding]:
    """What the token judge sees in an endpoint: one finding per injected value."""
    found = []
    for raw in _raw_values(endpoint):
        if not suspicious(raw):
            continue
        value = decode(raw)
        if _LEXABLE.isdisjoint(value) and "/*" not in value and "--" not in value:
            continue
        finding = judge(value)
        if finding is not None:
            found.append(finding)
    return found


def match(endpoint: str) -> list[str]:
    """Names of what an endpoint matches: token rules (``tokens:<rule>``) and signatures
    (empty: not SQL injection)."""
    if not suspicious(endpoint):
        return []
    names = _MATCHED.get(endpoint)
    if names is None:
        text, truncated = normalise(endpoint)
        names = tuple(dict.fromkeys(f"tokens:{f.rule}" for f in findings(endpoint)))
        names += tuple(
            name for name, gate, rx in _EACH if gate(text) and rx.search(text) is not None
        )
        if truncated:
            names += ("comment_truncation",)
        if len(_MATCHED) >= _MATCHED_CAP:
            _MATCHED.clear()
        _MATCHED[endpoint] = names
    return list(names)  # a new list: callers keep it in alert evidence


def scanner_of(user_agent: Any) -> str | None:
    if not user_agent or type(user_agent) is not str:
        return None
    lowered = user_agent.lower()
    for name in SCANNERS:
        if name in lowered:
            return name
    return None


@register
class SqlInjection(Detector):
    kind = "sql_injection"
    family = "api-access-logs"
    severity = "critical"
    defaults = {"realert": 3600.0, "samples": 5, "inspect_user_agent": False}
    colocate = ("ip_address",)
    prefilter_reads_record_only = True

    def __init__(self, params: dict[str, Any] | None = None, ctx: Any = None) -> None:
        super().__init__(params, ctx)
        self.realert = float(self.params["realert"])
        self.max_samples = int(self.params["samples"])
        self.inspect_ua = bool(self.params["inspect_user_agent"])
        # ip -> [quiet until, incident start, matching requests, samples]; attackers only
        self.state: KeyedState[str, list[Any]] = KeyedState(self.ctx.key_cap)
        self.matches = 0
        self._sweeper = Sweeper(max(self.realert, 60.0) / 4)

    def prefilter(self) -> Prefilter | None:
        if self.inspect_ua:
            return None  # any user agent may carry it
        return _endpoint_suspicious

    def column_prefilter(self) -> Any:
        if self.inspect_ua:
            return None
        return _endpoint_matches_column

    def process(self, events: list[Event]) -> list[Alert]:
        alerts: list[Alert] = []
        susp_chars = _SUSPICIOUS
        inspect_ua = self.inspect_ua
        for ev in events:
            data = ev.data
            endpoint = data["endpoint"]
            if susp_chars.isdisjoint(endpoint) and "--" not in endpoint and "/*" not in endpoint:
                if not inspect_ua:
                    continue
                names = match(data.get("user_agent") or "")
                where = "user_agent"
            else:
                names = match(endpoint)
                where = "endpoint"
                if not names and inspect_ua:
                    names = match(data.get("user_agent") or "")
                    where = "user_agent"
            if not names:
                continue
            self.matches += 1
            alert = self._on_match(ev, names, where)
            if alert is not None:
                alerts.append(alert)
        self.evaluations += len(events)
        return alerts

    def _on_match(self, ev: Event, names: list[str], where: str) -> Alert | None:
        data = ev.data
        ip = data["ip_address"]
        ts = ev.ts
        st = self.state.get(ip)
        sample = {
            "timestamp": iso(ts),
            "method": clip(data.get("method")),
            "endpoint": clip(data["endpoint"]),
            "status_code": data.get("status_code"),
            "user_agent": clip(data.get("user_agent")),
            "signatures": names,
        }
        if st is not None and ts < st[0]:
            st[2] += 1
            if len(st[3]) < self.max_samples:
                st[3].append(sample)
            self.state.touch(ip, st)
            return None
        st = [ts + self.realert, ts, 1, [sample] if self.max_samples else []]
        self.state.touch(ip, st)
        text, _ = normalise(data[where] or "")
        scanner = scanner_of(data.get("user_agent"))
        tokens = [
            {"rule": f.rule, "context": f.context, "pattern": f.pattern, "value": clip(f.value)}
            for f in findings(data[where] or "")
        ]
        evidence: dict[str, Any] = {
            "signatures": names,
            "tokens": tokens,
            "matched_field": where,
            "normalised": clip(text),
            "raw": clip(data[where]),
            "method": clip(data.get("method")),
            "status_code": data.get("status_code"),
            "user_agent": clip(data.get("user_agent")),
            "scanner": scanner,
            "first_seen": ts,
            "last_seen": ts,
            "requests": 1,
            "samples": list(st[3]),
        }
        status = data.get("status_code")
        outcome = ""
        if isinstance(status, int) and status >= 500:
            outcome = f" The server answered {status}: the input may reach the database."
        by = f" by {scanner}" if scanner else ""
        why = "".join(
            f" Read as SQL {_CONTEXTS[t['context']]}, {t['value']!r} lexes to "
            f"{t['pattern']!r} ({t['rule']})."
            for t in tokens[:1]
        )
        return self.make_alert(
            key={"ip_address": ip},
            incident=ts,
            event_time=ts,
            title=f"SQL injection{by} from {clip(ip)}: {', '.join(names)}",
            body=(
                f"{clip(data.get('method'))} {clip(data['endpoint'])} from {clip(ip)} matches "
                f"SQL injection signatures ({', '.join(names)}).{why}{outcome}"
            ),
            evidence=evidence,
            source=ev.source(),
            labels={"ip_address": clip(ip), **({"scanner": scanner} if scanner else {})},
        )

    def on_watermark(self, watermark: float) -> list[Alert]:
        if self._sweeper.due(watermark):
            for ip, st in self.state.items():
                if st[0] < watermark:
                    self.state.pop(ip)
        return []

    def snapshot(self) -> Any:
        return {
            "ips": [[ip, st] for ip, st in self.state.items()],
            "matches": self.matches,
            "evictions": self.state.evictions,
        }

    def restore(self, state: Any) -> None:
        for ip, st in state.get("ips", []):
            self.state.touch(ip, list(st))
        self.matches = int(state.get("matches", 0))
        self.state.evictions = int(state.get("evictions", 0))

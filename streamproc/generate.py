"""Realistic, deterministic event traffic with a known number of incidents per detector kind.

Used by ``streamproc produce`` (demos, load tests), the benchmarks (every run checks that the
expected alerts appeared) and the sample streams in ``topics/*.jsonl``.

    traffic = generate("mixed", 100_000, seed=7)
    records, expected = traffic            # {family: [record, ...]}, {kind: count}
    traffic.merged()                       # [(family, record)] in event-time order
    traffic.encoded("auth-logs")           # [(key bytes, JSON bytes)] for Kafka / MQTT

What the traffic looks like
---------------------------
- Event times follow a diurnal curve (quiet at night UTC, busy in the afternoon, lighter at
  weekends); ``start_ts``/``duration`` place it on the time line (default: the 3 days before
  ``DEFAULT_END``).
- Users, client IPs, projects and hosts are drawn from Zipf distributions, so a few keys are
  hot and most are cold, like real traffic. Each user logs in from one "site" (an office NAT or
  a home /24) in one country with a browser, SSH or VPN client.
- Field values are realistic: user agents, countries, endpoints with query strings, host
  names, projects/services, ticket subjects, revenue figures.

Incidents and why the counts are exact
--------------------------------------
Incidents are injected on purpose (brute force, password spray, distributed brute force,
compromise, unusual login, SQL injection, rate abuse, threshold breaches with recovery, silent
hosts, failed pipelines, deployments, SLA breaches, revenue drops and target misses). The
background is *constrained* so it cannot create extra incidents of the counted kinds: a
background failure that would make 4 failures of one (username, ip) within an hour, or 10
distinct failing users from one IP within 10 minutes, is turned into a success; an API client
never gets near 600 requests in 5 minutes; host metrics stay below every threshold; tickets
are answered well within their SLA; day-over-day revenue moves less than 10%. Attackers use
address ranges (first octets in ``_ATTACKER_OCTETS``) that the background never uses.

``expected`` counts *firing* alerts per kind as docs/detectors.md defines them (``resolved``
counts the resolved alerts where the generator knows them for certain: metric_threshold,
host_silent, sla_breach and pipeline_failed). ``pipeline_failed`` counts red streaks per
project+branch (later failures while red join the incident). ``count_alerts`` counts a list of
alerts the same way: for ``pipeline_failed`` only failure/warning alerts (severity above info)
count, and only internal alerts count (a ticket's customer acknowledgement or notice is a
companion of the internal alert; breaches are answered before 2x SLA, so no customer apology is
due).

Caveats: spans longer than 30 days may let a long-dormant user look "unusual"; the expected
counts assume the default detector thresholds.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

FAMILIES = ("auth-logs", "api-access-logs", "host-metrics", "cicd-events", "support-tickets",
            "business-metrics")

# A fixed end date, so the sample streams and default runs are reproducible byte for byte.
DEFAULT_END = datetime(2026, 3, 2, 0, 0, tzinfo=UTC).timestamp()
DEFAULT_DURATION = 3 * 86400.0

# Share of events per family in the mixed scenario (business-metrics are daily KPIs: a few).
MIX = {"auth-logs": 0.32, "api-access-logs": 0.44, "host-metrics": 0.20, "cicd-events": 0.02,
       "support-tickets": 0.02}

SCENARIOS: dict[str, tuple[str, ...]] = {
    "mixed": FAMILIES,
    "all": FAMILIES,
    "auth": ("auth-logs",),
    "api": ("api-access-logs",),
    "security": ("auth-logs", "api-access-logs"),
    "hosts": ("host-metrics",),
    "cicd": ("cicd-events",),
    "tickets": ("support-tickets",),
    "business": ("business-metrics",),
    **{f: (f,) for f in FAMILIES},
}

# Partition key per family (the contract key); cicd-events use project, else service.
KEY_FIELDS = {"auth-logs": ("username",), "api-access-logs": ("ip_address",),
              "host-metrics": ("host",), "cicd-events": ("project", "service"),
              "support-tickets": ("ticket_id",), "business-metrics": ("metric",)}

TS_FORMATS = ("iso", "iso_ms", "epoch_s", "epoch_ms")

# Every kind the generator counts, so ``expected`` always names all of a family's kinds.
KINDS_BY_FAMILY = {
    "auth-logs": ("brute_force", "password_spray", "distributed_brute_force",
                  "compromise_suspected", "unusual_login"),
    "api-access-logs": ("sql_injection", "rate_abuse"),
    "host-metrics": ("metric_threshold", "host_silent"),
    "cicd-events": ("pipeline_failed", "deployment"),
    "support-tickets": ("ticket_created", "sla_breach", "ticket_resolved"),
    "business-metrics": ("revenue_target_missed", "revenue_drop", "revenue_target_exceeded",
                         "metric_below"),
}


# ---------------------------------------------------------------------------------------------
# Results


@dataclass(slots=True)
class Incident:
    kind: str
    family: str
    start: float
    key: dict[str, Any]
    note: str = ""


@dataclass
class Traffic:
    """Generated records per family (event-time order) and the alerts they should raise."""

    scenario: str
    seed: int
    start_ts: float
    end_ts: float
    records: dict[str, list[dict[str, Any]]]
    times: dict[str, list[float]]  # event time (epoch s) of each record, parallel to records
    expected: dict[str, int]
    resolved: dict[str, int] = field(default_factory=dict)
    incidents: list[Incident] = field(default_factory=list)
    ts_format: str = "iso"

    def __iter__(self) -> Iterator[Any]:  # records, expected = generate(...)
        yield self.records
        yield self.expected

    def __len__(self) -> int:
        return sum(len(v) for v in self.records.values())

    def merged(self) -> list[tuple[str, dict[str, Any]]]:
        """All families in one event-time order (ties keep family order)."""
        return [(fam, self.records[fam][i]) for _, _, fam, i in self._merge_index()]

    def _merge_index(self) -> list[tuple[None, None, str, int]]:
        # One stable key sort over the concatenated times (families in FAMILIES order) is
        # several times faster than sorting tuples.
        fams = [f for f in FAMILIES if f in self.times]
        all_times: list[float] = []
        owners: list[tuple[str, int]] = []
        for fam in fams:
            all_times.extend(self.times[fam])
            owners.extend((fam, i) for i in range(len(self.times[fam])))
        order = sorted(range(len(all_times)), key=all_times.__getitem__)
        return [(None, None, *owners[j]) for j in order]

    def encoded(self, family: str) -> list[tuple[bytes | None, bytes]]:
        """(partition key, JSON value) pairs for one family, in event-time order."""
        dumps = orjson.dumps
        keys = KEY_FIELDS[family]
        out: list[tuple[bytes | None, bytes]] = []
        for rec in self.records[family]:
            key = None
            for name in keys:
                value = rec.get(name)
                if value:
                    key = str(value).encode()
                    break
            out.append((key, dumps(rec)))
        return out

    def merged_bytes(self) -> list[tuple[str, bytes | None, bytes]]:
        """(family, key, value) for every record, all families in event-time order."""
        enc = {fam: self.encoded(fam) for fam in self.records}
        return [(fam, *enc[fam][i]) for _, _, fam, i in self._merge_index()]

    def write_jsonl(self, directory: str) -> dict[str, str]:
        """Write ``DIR/<family>.jsonl`` per family; returns {family: path}."""
        import os

        os.makedirs(directory, exist_ok=True)
        paths = {}
        for fam, recs in self.records.items():
            path = os.path.join(directory, f"{fam}.jsonl")
            with open(path, "wb") as fh:
                fh.write(b"".join(orjson.dumps(r) + b"\n" for r in recs))
            paths[fam] = path
        return paths


def count_alerts(alerts: Iterable[Any], status: str = "firing") -> dict[str, int]:
    """Count alerts (``Alert`` objects or their dicts) per kind, the way ``expected`` counts.

    ``pipeline_failed`` counts only alerts above info (info ones report successes/starts);
    customer-facing companions (``audience: customer``: the ticket acknowledgement, the
    resolution notice, the SLA apology) are not counted, only the internal alert.
    """
    counts: dict[str, int] = defaultdict(int)
    for alert in alerts:
        get = alert.get if isinstance(alert, dict) else lambda k, a=alert: getattr(a, k, None)
        if get("status") != status:
            continue
        kind = get("kind")
        if kind == "pipeline_failed" and get("severity") == "info":
            continue
        if get("audience") == "customer":
            continue
        counts[kind] += 1
    return dict(counts)


# ---------------------------------------------------------------------------------------------
# Time helpers


def diurnal_weight(ts: float) -> float:
    """Relative load at ``ts``: trough ~04:00 UTC, peak ~15:00 UTC, weekends at 60%."""
    hour = (ts % 86400.0) / 3600.0
    day = 0.55 + 0.45 * math.sin((hour - 9.5) / 24.0 * 2 * math.pi)
    weekday = datetime.fromtimestamp(ts, UTC).weekday()
    return day * (0.6 if weekday >= 5 else 1.0) + 0.05


def diurnal_times(rng: random.Random, n: int, start: float, end: float) -> list[float]:
    """``n`` sorted event times on [start, end) drawn from the diurnal curve (per-minute)."""
    if n <= 0 or end <= start:
        return []
    step = 60.0
    buckets = max(1, int((end - start) // step))
    cum: list[float] = []
    total = 0.0
    for b in range(buckets):
        total += diurnal_weight(start + b * step)
        cum.append(total)
    picks = rng.choices(range(buckets), cum_weights=cum, k=n)
    rnd = rng.random
    times = [start + b * step + rnd() * step for b in picks]
    times.sort()
    return times


class Formatter:
    """Epoch seconds -> the requested timestamp representation (cached per second)."""

    def __init__(self, fmt: str) -> None:
        if fmt not in TS_FORMATS:
            raise ValueError(f"unknown timestamp format {fmt!r}; use one of {TS_FORMATS}")
        self.fmt = fmt
        self._sec = -1
        self._text = ""

    def __call__(self, ts: float) -> str | int | float:
        fmt = self.fmt
        if fmt == "epoch_ms":
            return int(ts * 1000)
        if fmt == "epoch_s":
            return round(ts, 3)
        sec = int(ts)
        minute = sec - sec % 60
        if minute != self._sec:
            self._sec = minute
            self._text = time.strftime("%Y-%m-%dT%H:%M:", time.gmtime(minute))
        if fmt == "iso_ms":
            return f"{self._text}{sec - minute:02d}.{int((ts - sec) * 1000):03d}Z"
        return f"{self._text}{sec - minute:02d}Z"


def zipf_cum(n: int, s: float = 1.1) -> list[float]:
    total = 0.0
    out = []
    for rank in range(1, n + 1):
        total += rank ** -s
        out.append(total)
    return out


def _ip(rng: random.Random, first_octets: tuple[int, ...]) -> str:
    return (f"{rng.choice(first_octets)}.{rng.randrange(1, 255)}.{rng.randrange(0, 256)}."
            f"{rng.randrange(2, 254)}")


def _net24(ip: str) -> str:
    return ip.rsplit(".", 1)[0]


def _spaced_starts(rng: random.Random, n: int, lo: float, hi: float, gap: float) -> list[float]:
    """``n`` sorted times in [lo, hi) at least ``gap`` apart where the span allows."""
    if n <= 0:
        return []
    span = hi - lo
    gap = min(gap, span / (n + 1))
    free = span - gap * n
    cuts = sorted(rng.random() * free for _ in range(n))
    return [lo + c + i * gap for i, c in enumerate(cuts)]


# ---------------------------------------------------------------------------------------------
# Vocabulary

_FIRST = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
          "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter",
          "yusuf", "zoe", "amara", "bjorn", "chen", "diego", "fatima", "hiro", "ingrid", "kofi",
          "lucia", "mateo", "nadia", "omar", "priya", "quinn", "rosa", "sven", "tariq", "uma",
          "wei", "xavier", "yara", "lena", "marco", "sofia", "arjun", "emma", "liam", "noah")
_LAST = ("smith", "jones", "garcia", "muller", "rossi", "tanaka", "kim", "nguyen", "silva",
         "kowalski", "novak", "obrien", "dubois", "jansen", "larsen", "patel", "cohen", "ali",
         "schmidt", "moreau", "costa", "ivanova", "haddad", "okafor", "lindqvist", "walsh",
         "fischer", "romero", "sato", "park", "singh", "martin", "bauer", "weber", "hughes")
_SERVICE_ACCOUNTS = ("svc-backup", "svc-deploy", "svc-monitoring", "jenkins", "ansible",
                     "svc-reporting", "gitlab-runner", "svc-etl")
_SPRAY_NAMES = ("admin", "administrator", "root", "test", "guest", "oracle", "postgres", "user",
                "support", "info", "sales", "demo", "ubuntu", "ftp", "backup", "webmaster",
                "operator", "helpdesk", "training", "scanner")

_BROWSER_UAS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/122.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.3 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/121.0.0.0 Safari/537.36 Edg/121.0.2277.128",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.3 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/122.0.6261.64 Mobile Safari/537.36",
)
_CLIENT_UAS = ("OpenSSH_9.6p1 Ubuntu-3ubuntu13", "OpenSSH_8.9p1", "GlobalProtect/6.1.1-19",
               "OpenVPN/2.6.8", "Okta Verify/9.12.0 (iOS 17.3)", "PuTTY_Release_0.80")
_API_UAS = _BROWSER_UAS + (
    "okhttp/4.12.0", "ShopApp/5.3.1 (iOS 17.3; iPhone15,2)", "ShopApp/5.3.0 (Android 14)",
    "python-requests/2.31.0", "axios/1.6.7", "Go-http-client/2.0", "curl/8.5.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Prometheus/2.50.1", "kube-probe/1.29",
)
_ATTACK_UAS = ("python-requests/2.31.0", "Go-http-client/1.1", "Mozilla/5.0 zgrab/0.x",
               "hydra", "libssh2_1.10.0", "Mozilla/5.0 (Windows NT 6.1; rv:60.0) "
               "Gecko/20100101 Firefox/60.0")
_SQLMAP_UA = "sqlmap/1.8.2#stable (https://sqlmap.org)"

# (country, weight) for users; attackers come from elsewhere.
_COUNTRIES = (("US", 34), ("DE", 12), ("GB", 10), ("FR", 7), ("IN", 8), ("NL", 5), ("CA", 5),
              ("BR", 4), ("JP", 4), ("ES", 3), ("SE", 2), ("PL", 3), ("AU", 3))
_ATTACK_COUNTRIES = ("RU", "CN", "KP", "IR", "VN", "NG", "UA", "RO", "BY", "ID")
# First octets reserved for attackers: background addresses never start with these.
_ATTACKER_OCTETS = (45, 91, 103, 185, 193, 194)
_USER_OCTETS = (24, 31, 62, 73, 77, 81, 86, 98, 109, 151, 172, 176, 188, 201, 213, 217)
_CLIENT_OCTETS = (3, 13, 34, 52, 66, 68, 71, 84, 88, 99, 104, 142, 162, 174, 203, 209)

_API_ROUTES = (  # (method weights, template); {id} {n} {q} filled per request
    ("GET", "/api/v1/products?category={cat}&page={n}&limit=50", 14),
    ("GET", "/api/v1/products/{id}", 16),
    ("GET", "/api/v1/search?q={q}&sort=relevance", 8),
    ("GET", "/api/v1/users/{id}/orders?status=open", 6),
    ("POST", "/api/v1/orders", 5),
    ("GET", "/api/v1/orders/{id}", 6),
    ("PUT", "/api/v1/cart/{id}", 5),
    ("DELETE", "/api/v1/cart/{id}/items/{n}", 2),
    ("POST", "/api/v1/auth/token", 4),
    ("GET", "/api/v2/recommendations?user_id={id}&limit=12", 5),
    ("GET", "/health", 6),
    ("GET", "/static/js/app.3f9c2d1e.js", 6),
    ("GET", "/static/css/main.8a1b7c44.css", 4),
    ("GET", "/api/v1/inventory?sku=SKU-{id}&warehouse=ams-{n}", 3),
    ("POST", "/api/v1/payments/intent", 2),
    ("GET", "/api/v1/orders?created_after=2026-02-01&page={n}", 2),
    ("PATCH", "/api/v1/users/{id}/preferences", 2),
    ("GET", "/favicon.ico", 2),
)
_CATEGORIES = ("shoes", "jackets", "electronics", "books", "garden", "toys", "kitchen", "sports")
_QUERIES = ("running+shoes", "usb-c+cable", "winter+jacket", "coffee+grinder", "lego",
            "noise+cancelling+headphones", "yoga+mat", "desk+lamp", "gift+card", "tent")
_STATUSES = ((200, 820), (201, 40), (204, 25), (301, 8), (304, 30), (400, 15), (401, 12),
             (403, 6), (404, 30), (409, 2), (422, 4), (429, 2), (500, 3), (502, 2), (503, 1))

_SQLI = (  # one request per sql_injection incident, in the encodings scanners really use
    "/api/v1/products?id=1' OR '1'='1",
    "/api/v1/search?q=%27%20UNION%20SELECT%20username%2Cpassword%20FROM%20users--",
    "/api/v1/users?id=1;DROP TABLE users--",
    "/api/v1/products/12?ref=1 AND SLEEP(5)",
    "/login?username=admin'--&password=x",
    "/api/v1/orders?id=1%2527%2520OR%25201%253D1",
    "/news?id=-1+UNION+ALL+SELECT+NULL,NULL,table_name+FROM+information_schema.tables",
    "/api/v1/report?from=2026-01-01';WAITFOR DELAY '0:0:5'--",
    "/item.php?id=1 AND extractvalue(1,concat(0x7e,(SELECT version())))",
    "/api/v1/products?category=shoes'/**/OR/**/1=1#",
    "/api/v1/search?q=1'+AND+(SELECT+1+FROM+pg_sleep(5))--",
    "/api/v1/users/5?sort=(CASE WHEN (1=1) THEN name ELSE id END);SELECT BENCHMARK(5000000,MD5(1))",
)

_HOST_ROLES = (("web", 10), ("api", 8), ("worker", 6), ("db", 3), ("cache", 3), ("queue", 2),
               ("search", 2), ("batch", 2))
_REGIONS = ("eu-west-1", "us-east-1", "us-west-2", "ap-southeast-1", "eu-central-1")
_ENVS = (("prod", 6), ("staging", 2), ("dev", 1))

_PROJECTS = ("payments-api", "checkout-web", "auth-service", "inventory", "mobile-app",
             "data-pipeline", "search", "notifications", "billing", "admin-portal",
             "recommendations", "shipping", "gateway", "analytics", "infra-terraform")
_BRANCH_FEATURES = ("add-retry-backoff", "fix-null-currency", "upgrade-postgres-16",
                    "new-checkout-flow", "rate-limit-tuning", "dark-mode", "pci-audit-fixes",
                    "cache-warmup", "sso-saml", "refactor-orders")
_FAIL_REASONS = ("unit tests failed: 3 of 812", "integration test timeout after 600s",
                 "lint: 14 errors", "docker build failed: no space left on device",
                 "dependency resolution failed", "coverage 71% below 80% gate",
                 "e2e: checkout.spec.ts flaky failure", "migration check failed")
_RELEASE_NOTES = ("Fix currency rounding on refunds", "Enable new checkout flow for 10%",
                  "Upgrade to Python 3.12", "Add retry with backoff to payment provider calls",
                  "Reduce p99 latency of search by caching facets", "Security patches",
                  "Rotate signing keys", "Add SAML SSO for enterprise customers")

_TICKET_CATEGORIES = ("billing", "technical", "account", "shipping", "feature-request",
                      "bug", "integration")
_SUBJECTS = {
    "billing": ("Charged twice for order", "Invoice shows wrong VAT number",
                "Refund not received after 10 days", "Cannot update credit card"),
    "technical": ("API returns 502 intermittently", "Webhook deliveries delayed",
                  "Dashboard does not load in Safari", "Export to CSV times out"),
    "account": ("Locked out after password reset", "Cannot enable 2FA",
                "Please delete my account (GDPR)", "SSO login loops back to sign-in"),
    "shipping": ("Package marked delivered but not received", "Wrong item shipped",
                 "Tracking number not working"),
    "feature-request": ("Request: export to Parquet", "Request: Slack integration for alerts"),
    "bug": ("Search ignores filters on mobile", "Totals wrong when coupon applied"),
    "integration": ("Shopify sync stopped", "Salesforce connector auth error"),
}
_AGENTS = ("maria.lopez", "tom.becker", "aiko.yamada", "sam.okoro", "lisa.berg", "raj.mehta")
_RESOLUTIONS = ("Refund issued", "Fixed in release 2.14.3", "Configuration corrected",
                "Password reset link re-sent", "Replacement shipped", "Explained expected "
                "behaviour", "Duplicate of earlier ticket", "Workaround provided")
_COMPANIES = ("acme-corp", "globex", "initech", "umbrella-health", "stark-retail",
              "wayne-logistics", "hooli", "vandelay-imports", "soylent", "tyrell")
_WHEN = ("today", "yesterday", "after the last update", "this morning")
SLA_HOURS = {"urgent": 1, "high": 4, "normal": 24, "low": 72}


def _weighted(rng: random.Random, pairs: tuple[tuple[Any, int], ...], k: int) -> list[Any]:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs], k=k)


class _Stream:
    """Collects (ts, record) for one family; incidents push future events on a heap."""

    def __init__(self, family: str, fmt: Formatter, end: float) -> None:
        self.family = family
        self.fmt = fmt
        self.end = end
        self.heap: list[tuple[float, int, Any]] = []
        self._seq = 0
        self.out: list[tuple[float, dict[str, Any]]] = []

    def push(self, ts: float, item: Any) -> None:
        self._seq += 1
        heapq.heappush(self.heap, (ts, self._seq, item))

    def emit(self, ts: float, rec: dict[str, Any]) -> None:
        rec["timestamp"] = self.fmt(ts)
        self.out.append((ts, rec))


# ---------------------------------------------------------------------------------------------
# auth-logs


def _gen_auth(rng: random.Random, n: int, start: float, end: float, fmt: Formatter,
              plan: dict[str, int]) -> tuple[_Stream, dict[str, int], list[Incident]]:
    s = _Stream("auth-logs", fmt, end)
    n_users = max(40, min(200_000, n // 15))
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < n_users:
        r = rng.random()
        if r < 0.02:
            name = f"{rng.choice(_SERVICE_ACCOUNTS)}-{rng.randrange(1, 30):02d}"
        elif r < 0.6:
            name = f"{rng.choice(_FIRST)}.{rng.choice(_LAST)}"
        else:
            name = f"{rng.choice(_FIRST)[0]}{rng.choice(_LAST)}{rng.randrange(1, 100)}"
        if name not in seen:
            seen.add(name)
            names.append(name)
    # Sites: a few office NATs shared by many users, and many home /24s.
    n_offices = max(2, n_users // 400)
    offices = []
    for _ in range(n_offices):
        net = _ip(rng, _USER_OCTETS).rsplit(".", 1)[0]
        offices.append(([f"{net}.{rng.randrange(2, 254)}" for _ in range(rng.randint(1, 4))],
                        _weighted(rng, _COUNTRIES, 1)[0]))
    countries = _weighted(rng, _COUNTRIES, n_users)
    user_site: list[tuple[list[str], str]] = []
    user_ua: list[str] = []
    for i in range(n_users):
        if rng.random() < 0.55:
            user_site.append(offices[rng.randrange(n_offices)])
        else:
            net = _ip(rng, _USER_OCTETS).rsplit(".", 1)[0]
            user_site.append(([f"{net}.{rng.randrange(2, 254)}" for _ in range(rng.randint(1, 2))],
                              countries[i]))
        user_ua.append(rng.choice(_BROWSER_UAS + _CLIENT_UAS) if not names[i].startswith(
            ("svc-", "jenkins", "ansible", "gitlab")) else "OpenSSH_9.6p1")
    services = ("sso", "vpn", "ssh", "sso", "sso", "webmail")

    successes: dict[int, int] = defaultdict(int)  # per user index, so far
    fail_pair: dict[tuple[int, str], deque[float]] = defaultdict(deque)
    fail_ip: dict[str, deque[tuple[float, int]]] = defaultdict(deque)
    busy_until: dict[int, float] = {}
    # After a distributed attack the detector's window still holds the attackers' networks
    # for an hour: a later background failure of that user would re-evaluate it and fire
    # again once the realert period is over. Such users only succeed until then.
    quiet_until: dict[int, float] = {}
    expected: dict[str, int] = defaultdict(int)
    incidents: list[Incident] = []
    used_attack_ips: set[str] = set()

    def attack_ip() -> str:
        while True:
            ip = _ip(rng, _ATTACKER_OCTETS)
            if ip not in used_attack_ips and _net24(ip) not in {_net24(x) for x in
                                                                 list(used_attack_ips)[-64:]}:
                used_attack_ips.add(ip)
                return ip

    def pick_target(ts: float, min_successes: int) -> int:
        # Prefer users with a history (so unusual_login/compromise are judged on a known
        # user) who are not part of another incident within two hours.
        for _ in range(400):
            u = min(int(rng.paretovariate(0.9)) - 1, n_users - 1)
            if rng.random() < 0.5:
                u = rng.randrange(n_users)
            if busy_until.get(u, -1.0) < ts and successes[u] >= min_successes:
                break
        busy_until[u] = ts + 7200.0
        return u

    def rec(u: int | str, ip: str, ok: bool, ua: str, country: str,
            service: str = "sso") -> dict[str, Any]:
        return {"timestamp": None, "username": names[u] if isinstance(u, int) else u,
                "ip_address": ip, "success": ok, "user_agent": ua, "country": country,
                "service": service}

    def brute(ts: float, compromise: bool) -> None:
        u = pick_target(ts, 5 if compromise else 0)
        ip, country = attack_ip(), rng.choice(_ATTACK_COUNTRIES)
        ua = rng.choice(_ATTACK_UAS)
        svc = rng.choice(("ssh", "vpn", "sso", "webmail"))
        if compromise:
            k = rng.randint(5, 8)
            t = ts
            for _ in range(k):
                s.push(t, rec(u, ip, False, ua, country, svc))
                t += rng.uniform(15, 50)  # all failures within ~6 min
            s.push(t + rng.uniform(20, 120), ("success", u, rec(u, ip, True, ua, country, svc)))
            expected["brute_force"] += 1
            expected["compromise_suspected"] += 1
            incidents.append(Incident("compromise_suspected", "auth-logs", ts,
                                      {"username": names[u], "ip_address": ip},
                                      f"{k} failures then a success (also brute_force "
                                      "and unusual_login)"))
        else:
            k = rng.randint(6, 30)
            span = rng.uniform(120, 1800)  # well inside the 1 h window: one alert
            for i in range(k):
                s.push(ts + span * i / (k - 1), rec(u, ip, False, ua, country, svc))
            expected["brute_force"] += 1
            incidents.append(Incident("brute_force", "auth-logs", ts,
                                      {"username": names[u], "ip_address": ip},
                                      f"{k} failures in {span / 60:.0f} min"))

    def spray(ts: float) -> None:
        ip, country, ua = attack_ip(), rng.choice(_ATTACK_COUNTRIES), rng.choice(_ATTACK_UAS)
        k = rng.randint(22, 40)
        targets: list[int | str] = list(_SPRAY_NAMES[:rng.randint(5, 12)])
        while len(targets) < k:
            targets.append(pick_target(ts, 0))
        span = rng.uniform(60, 480)  # all within the 10 min window
        for i, u in enumerate(targets):
            s.push(ts + span * i / (k - 1), rec(u, ip, False, ua, country))
        expected["password_spray"] += 1
        incidents.append(Incident("password_spray", "auth-logs", ts, {"ip_address": ip},
                                  f"{k} usernames in {span / 60:.0f} min"))

    def distributed(ts: float) -> None:
        u = pick_target(ts, 0)
        k = rng.randint(12, 20)
        span = rng.uniform(600, 2400)
        for i in range(k):
            ip = attack_ip()
            for j in range(rng.randint(1, 2)):
                s.push(ts + span * i / k + j * 7, rec(u, ip, False, rng.choice(_ATTACK_UAS),
                                                      rng.choice(_ATTACK_COUNTRIES)))
        quiet_until[u] = ts + span + 2 * 3600.0 + 600.0
        busy_until[u] = max(busy_until[u], quiet_until[u])
        expected["distributed_brute_force"] += 1
        incidents.append(Incident("distributed_brute_force", "auth-logs", ts,
                                  {"username": names[u]}, f"{k} IPs in {span / 60:.0f} min"))

    def unusual(ts: float) -> None:
        u = pick_target(ts, 5)
        ip = _ip(rng, _ATTACKER_OCTETS[:2])  # a hotel / travel network never seen before
        used_attack_ips.add(ip)
        home = user_site[u][1]
        country = rng.choice([c for c, _ in _COUNTRIES if c != home])
        s.push(ts, ("success", u, rec(u, ip, True, user_ua[u], country,
                                      services[u % len(services)])))
        incidents.append(Incident("unusual_login", "auth-logs", ts,
                                  {"username": names[u], "ip_address": ip},
                                  f"first login from {country}"))
        # counted when emitted (needs >= 3 earlier successes)

    actions: list[tuple[str, Callable[[float], None]]] = [
        ("brute_force", lambda t: brute(t, False)), ("compromise", lambda t: brute(t, True)),
        ("password_spray", spray), ("distributed_brute_force", distributed),
        ("unusual_login", unusual)]
    n_incident_events = 0
    lo, hi = start + (end - start) * 0.15, end - min(3600.0, (end - start) * 0.1)
    for name, fn in actions:
        count = plan.get(name, 0)
        n_incident_events += count * {"brute_force": 18, "compromise": 8, "password_spray": 31,
                                      "distributed_brute_force": 24}.get(name, 1)
        for t in _spaced_starts(rng, count, lo, hi, 1800.0):
            s.push(t, ("trigger", fn))

    background = diurnal_times(rng, max(0, n - n_incident_events), start, end)
    cum = zipf_cum(n_users, 1.05)
    users = rng.choices(range(n_users), cum_weights=cum, k=len(background))
    fails = [rng.random() < 0.045 for _ in background]

    def deliver_until(ts: float) -> None:
        heap = s.heap
        while heap and heap[0][0] <= ts:
            t, _, item = heapq.heappop(heap)
            if isinstance(item, tuple):
                if item[0] == "trigger":
                    item[1](t)
                    continue
                _, u, r = item
                if successes[u] >= 3:
                    expected["unusual_login"] += 1
                successes[u] += 1
                s.emit(t, r)
            else:
                s.emit(t, item)

    for ts, u, fail in zip(background, users, fails, strict=True):
        if s.heap and s.heap[0][0] <= ts:
            deliver_until(ts)
        ips, country = user_site[u]
        ip = ips[0] if len(ips) == 1 else rng.choice(ips)
        if fail and quiet_until and quiet_until.get(u, -1.0) > ts:
            fail = False
        if fail:
            pair = fail_pair[(u, ip)]
            while pair and pair[0] <= ts - 3600.0:
                pair.popleft()
            by_ip = fail_ip[ip]
            while by_ip and by_ip[0][0] <= ts - 600.0:
                by_ip.popleft()
            # Keep clear of brute_force (< 5 per user+ip per hour) and password_spray
            # (< 20 distinct users per ip per 10 min), with margin.
            if len(pair) >= 3 or len({x[1] for x in by_ip}) >= 8:
                fail = False
            else:
                pair.append(ts)
                by_ip.append((ts, u))
        if not fail:
            successes[u] += 1
        s.emit(ts, {"timestamp": None, "username": names[u], "ip_address": ip,
                    "success": not fail, "user_agent": user_ua[u], "country": country,
                    "service": services[u % len(services)]})
    deliver_until(float("inf"))
    return s, expected, incidents


# ---------------------------------------------------------------------------------------------
# api-access-logs


def _gen_api(rng: random.Random, n: int, start: float, end: float, fmt: Formatter,
             plan: dict[str, int]) -> tuple[_Stream, dict[str, int], list[Incident]]:
    s = _Stream("api-access-logs", fmt, end)
    n_ips = max(50, min(300_000, n // 10))
    ips = []
    for i in range(n_ips):
        if i % 23 == 7:
            ips.append(f"2001:db8:{rng.randrange(0x10000):x}:{rng.randrange(0x10000):x}::"
                       f"{rng.randrange(1, 0xffff):x}")
        else:
            ips.append(_ip(rng, _CLIENT_OCTETS))
    ip_ua = [rng.choice(_API_UAS) for _ in range(n_ips)]
    expected: dict[str, int] = defaultdict(int)
    incidents: list[Incident] = []
    used: set[str] = set()

    def attack_ip() -> str:
        while True:
            ip = _ip(rng, _ATTACKER_OCTETS)
            if ip not in used:
                used.add(ip)
                return ip

    route_w = [r[2] for r in _API_ROUTES]
    route_cum = list(itertools.accumulate(route_w))
    status_vals = [x[0] for x in _STATUSES]
    status_w = [x[1] for x in _STATUSES]

    def request(ip: str, ua: str) -> dict[str, Any]:
        method, tpl, _ = rng.choices(_API_ROUTES, cum_weights=route_cum)[0]
        path = tpl
        if "{" in tpl:
            path = tpl.format(id=rng.randrange(1, 99999), n=rng.randrange(1, 40),
                              q=rng.choice(_QUERIES), cat=rng.choice(_CATEGORIES))
        status = rng.choices(status_vals, weights=status_w)[0]
        if method == "POST" and status == 200:
            status = 201
        return {"timestamp": None, "endpoint": path, "method": method, "status_code": status,
                "ip_address": ip, "user_agent": ua,
                "response_time_ms": round(rng.lognormvariate(3.3, 0.7), 1),
                "bytes_sent": rng.randrange(120, 48000)}

    def sqli(ts: float) -> None:
        ip = attack_ip()
        ua = _SQLMAP_UA if rng.random() < 0.5 else rng.choice(_ATTACK_UAS)
        for k in range(rng.randint(1, 4)):  # a benign look around first
            r = request(ip, ua)
            r["status_code"] = 200
            s.push(ts - 30 * (k + 1), r)
        payload = _SQLI[expected["sql_injection"] % len(_SQLI)]
        s.push(ts, {"timestamp": None, "endpoint": payload, "method": "GET",
                    "status_code": rng.choice((200, 400, 403, 500)), "ip_address": ip,
                    "user_agent": ua, "response_time_ms": round(rng.uniform(5, 5100), 1),
                    "bytes_sent": rng.randrange(200, 4000)})
        expected["sql_injection"] += 1
        incidents.append(Incident("sql_injection", "api-access-logs", ts, {"ip_address": ip},
                                  payload))

    def abuse(ts: float) -> None:
        ip = attack_ip()
        ua = rng.choice(("python-requests/2.31.0", "Go-http-client/2.0", "Scrapy/2.11.0"))
        k = rng.randint(650, 1200)
        span = rng.uniform(60, 240)  # all inside one 5 min window: exactly one alert
        for i in range(k):
            r = request(ip, ua)
            r["endpoint"] = f"/api/v1/products?category={rng.choice(_CATEGORIES)}&page={i}"
            r["method"] = "GET"
            if i > 500 and rng.random() < 0.3:
                r["status_code"] = 429
            s.push(ts + span * i / (k - 1), r)
        expected["rate_abuse"] += 1
        incidents.append(Incident("rate_abuse", "api-access-logs", ts, {"ip_address": ip},
                                  f"{k} requests in {span:.0f} s"))

    lo, hi = start + (end - start) * 0.1, end - min(1800.0, (end - start) * 0.05)
    n_incident = 0
    for t in _spaced_starts(rng, plan.get("sql_injection", 0), lo, hi, 300.0):
        s.push(t, ("trigger", sqli))
        n_incident += 3
    for t in _spaced_starts(rng, plan.get("rate_abuse", 0), lo, hi, 900.0):
        s.push(t, ("trigger", abuse))
        n_incident += 925

    background = diurnal_times(rng, max(0, n - n_incident), start, end)
    cum = zipf_cum(n_ips, 1.1)
    picks = rng.choices(range(n_ips), cum_weights=cum, k=len(background))
    recent: dict[int, deque[float]] = defaultdict(deque)
    methods = [r[0] for r in _API_ROUTES]
    tpls = [r[1] for r in _API_ROUTES]
    routes = rng.choices(range(len(_API_ROUTES)), weights=route_w, k=len(background))
    statuses = rng.choices(status_vals, weights=status_w, k=len(background))
    heap = s.heap
    for ts, ip_i, route, status in zip(background, picks, routes, statuses, strict=True):
        while heap and heap[0][0] <= ts:
            t, _, item = heapq.heappop(heap)
            if isinstance(item, tuple):
                item[1](t)
            else:
                s.emit(t, item)
        window = recent[ip_i]
        while window and window[0] <= ts - 300.0:
            window.popleft()
        if len(window) >= 400:  # stay far below rate_abuse's 600 per 5 min
            ip_i = rng.randrange(n_ips // 2, n_ips)
            window = recent[ip_i]
            while window and window[0] <= ts - 300.0:
                window.popleft()
        window.append(ts)
        tpl = tpls[route]
        path = tpl.format(id=int(ts * 7919) % 99991, n=ip_i % 37 + 1,
                          q=_QUERIES[ip_i % len(_QUERIES)],
                          cat=_CATEGORIES[int(ts) % len(_CATEGORIES)]) if "{" in tpl else tpl
        method = methods[route]
        if method == "POST" and status == 200:
            status = 201
        s.emit(ts, {"timestamp": None, "endpoint": path, "method": method,
                    "status_code": status, "ip_address": ips[ip_i], "user_agent": ip_ua[ip_i],
                    "response_time_ms": round(12.0 + (ts * 1000 % 97) * (1 + status // 500), 1),
                    "bytes_sent": 200 + int(ts * 131) % 30000})
    while heap:
        t, _, item = heapq.heappop(heap)
        if isinstance(item, tuple):
            item[1](t)
        else:
            s.emit(t, item)
    return s, expected, incidents


# ---------------------------------------------------------------------------------------------
# host-metrics

_THRESH = {"cpu_percent": 80.0, "memory_percent": 85.0, "disk_percent": 90.0,
           "load_average": 4.0}


def _gen_hosts(rng: random.Random, n: int, start: float, end: float, fmt: Formatter,
               plan: dict[str, int]) -> tuple[_Stream, dict[str, int], list[Incident],
                                              dict[str, int]]:
    s = _Stream("host-metrics", fmt, end)
    span = end - start
    n_hosts = max(4, min(5000, n // 400))
    n_hosts = max(n_hosts, plan.get("metric_threshold", 0) + plan.get("host_silent", 0) + 2)
    interval = min(900.0, max(10.0, span * n_hosts / max(1, n)))
    samples = max(1, n // n_hosts)
    first = end - samples * interval
    hosts = []
    taken: set[str] = set()
    roles = _weighted(rng, _HOST_ROLES, n_hosts * 2)
    envs = _weighted(rng, _ENVS, n_hosts * 2)
    i = 0
    while len(hosts) < n_hosts:
        name = (f"{roles[i]}-{rng.randrange(1, 60):02d}.{envs[i]}."
                f"{rng.choice(_REGIONS)}.internal")
        i = (i + 1) % len(roles)
        if name not in taken:
            taken.add(name)
            hosts.append(name)
    expected: dict[str, int] = defaultdict(int)
    resolved: dict[str, int] = defaultdict(int)
    incidents: list[Incident] = []

    # Incidents, one per host (no host breaches twice, so nothing can flap).
    order = list(range(n_hosts))
    rng.shuffle(order)
    breach: dict[int, tuple[str, float, float, float]] = {}  # host -> (metric, t0, t1, level)
    silent: dict[int, tuple[float, float]] = {}
    lo, hi = first + (end - first) * 0.15, end - (end - first) * 0.15
    kinds = ("cpu_percent", "cpu_percent", "memory_percent", "disk_percent", "load_average")
    for j in range(plan.get("metric_threshold", 0)):
        h = order.pop()
        metric = kinds[j % len(kinds)]
        hold = rng.randint(3, 8) * interval
        t0 = rng.uniform(lo, max(lo, hi - hold))
        critical = metric == "cpu_percent" and j % 2 == 1
        level = {"cpu_percent": (rng.uniform(96.5, 99.5) if critical else
                                 rng.uniform(84.0, 93.0)),
                 "memory_percent": rng.uniform(87.5, 93.5), "disk_percent": rng.uniform(91.5,
                                                                                        94.0),
                 "load_average": rng.uniform(5.0, 9.0)}[metric]
        breach[h] = (metric, t0, t0 + hold, level)
        expected["metric_threshold"] += 1
        resolved["metric_threshold"] += 1
        incidents.append(Incident("metric_threshold", "host-metrics", t0,
                                  {"host": hosts[h], "metric": metric},
                                  f"{metric} {level:.1f} for {hold / 60:.0f} min"
                                  + (" (critical)" if critical else "")))
    for _ in range(plan.get("host_silent", 0)):
        h = order.pop()
        gap = max(900.0, interval * rng.uniform(6, 12))
        t0 = rng.uniform(lo, max(lo, hi - gap))
        silent[h] = (t0, t0 + gap)
        expected["host_silent"] += 1
        resolved["host_silent"] += 1
        incidents.append(Incident("host_silent", "host-metrics", t0, {"host": hosts[h]},
                                  f"silent for {gap / 60:.0f} min"))

    base = [(rng.uniform(12, 40), rng.uniform(35, 65), rng.uniform(25, 70)) for _ in hosts]
    region = [h.split(".")[2] for h in hosts]
    rows: list[tuple[float, int]] = []
    phase = [rng.uniform(0, interval) for _ in hosts]
    jitter = interval * 0.02
    for h in range(n_hosts):
        t = first + phase[h]
        sil = silent.get(h)
        while t < end:
            if not (sil and sil[0] <= t < sil[1]):
                rows.append((t + rng.uniform(-jitter, jitter), h))
            t += interval
    rows.sort()
    rnd = rng.random
    for ts, h in rows:
        cpu0, mem0, disk0 = base[h]
        diurnal = diurnal_weight(ts)
        cpu = min(72.0, cpu0 + 28 * diurnal + rnd() * 8)
        mem = min(78.0, mem0 + 6 * diurnal + rnd() * 4)
        disk = min(84.0, disk0 + 10 * (ts - first) / max(1.0, end - first) + rnd() * 0.3)
        load = min(3.4, cpu / 26.0 + rnd() * 0.4)
        b = breach.get(h)
        if b and b[1] <= ts < b[2]:
            value = b[3] + rnd() * 0.8 if b[0] != "load_average" else b[3] + rnd() * 0.5
            if b[0] == "cpu_percent":
                cpu = min(value, 99.9)
            elif b[0] == "memory_percent":
                mem = value
            elif b[0] == "disk_percent":
                disk = value
            else:
                load = value
        elif b and ts >= b[2] and b[0] == "disk_percent":
            disk = min(disk, 70.0)  # someone cleaned up the disk
        s.emit(ts, {"timestamp": None, "host": hosts[h], "cpu_percent": round(cpu, 1),
                    "memory_percent": round(mem, 1), "disk_percent": round(disk, 1),
                    "load_average": round(load, 2), "region": region[h]})
    return s, expected, incidents, resolved


# ---------------------------------------------------------------------------------------------
# cicd-events


def _gen_cicd(rng: random.Random, n: int, start: float, end: float, fmt: Formatter,
              plan: dict[str, int]) -> tuple[_Stream, dict[str, int], list[Incident],
                                             dict[str, int]]:
    """Pipelines and deployments. ``pipeline_failed`` counts red streaks: the first failure of
    a project+branch after a success (or its first run) raises one alert; failures while it
    is red join that incident; the next success resolves it."""
    s = _Stream("cicd-events", fmt, end)
    expected: dict[str, int] = defaultdict(int)
    incidents: list[Incident] = []
    times = diurnal_times(rng, n, start, end)
    cum = zipf_cum(len(_PROJECTS), 1.0)
    projects = rng.choices(_PROJECTS, cum_weights=cum, k=len(times))
    authors = [f"{f}.{last}" for f, last in zip(_FIRST[:20], _LAST[:20], strict=True)]
    # Which events are failures / production deployments is decided up front so the count is
    # what the plan asked for (a realistic ~8% failure rate by default).
    n_fail = min(plan.get("pipeline_failed", 0), len(times))
    n_prod = min(plan.get("deployment_production", 0), len(times) - n_fail)
    slots = list(range(len(times)))
    rng.shuffle(slots)
    fail_at = set(slots[:n_fail])
    prod_at = set(slots[n_fail:n_fail + n_prod])
    versions: dict[str, list[int]] = {p: [rng.randint(1, 4), rng.randint(0, 20), 0]
                                      for p in _PROJECTS}
    build_no = rng.randint(1000, 5000)
    red: dict[tuple[str, str], bool] = {}
    resolved = 0
    for i, (ts, project) in enumerate(zip(times, projects, strict=True)):
        build_no += 1
        if i in prod_at or (i not in fail_at and rng.random() < 0.12):
            v = versions[project]
            v[2] += 1
            env = "production" if i in prod_at else rng.choice(("staging", "staging", "dev"))
            rec = {"timestamp": None, "type": "deployment", "service": project,
                   "version": f"v{v[0]}.{v[1]}.{v[2]}", "environment": env,
                   "deployer": rng.choice(authors + ["svc-deploy", "argo-cd"]),
                   "release_notes": rng.choice(_RELEASE_NOTES)}
            expected["deployment"] += 1
            if env == "production":
                incidents.append(Incident("deployment", "cicd-events", ts,
                                          {"service": project}, f"production {rec['version']}"))
        else:
            branch = rng.choice(("main", "main", "main", "develop",
                                 f"feature/{rng.choice(_BRANCH_FEATURES)}",
                                 f"release/2026.{rng.randint(1, 3):02d}"))
            status = "failure" if i in fail_at else "success"
            commit = f"{rng.getrandbits(160):040x}"
            rec = {"timestamp": None, "type": "pipeline", "status": status, "project": project,
                   "branch": branch, "commit": commit, "author": rng.choice(authors),
                   "duration": round(rng.lognormvariate(5.5, 0.6), 1),
                   "build_url": f"https://ci.example.com/{project}/-/pipelines/{build_no}",
                   "description": (rng.choice(_FAIL_REASONS) if status == "failure" else
                                   f"Pipeline #{build_no} passed on {branch}")}
            was_red = red.get((project, branch), False)
            red[(project, branch)] = status == "failure"
            if status == "failure" and not was_red:
                expected["pipeline_failed"] += 1
                incidents.append(Incident("pipeline_failed", "cicd-events", ts,
                                          {"project": project, "branch": branch},
                                          rec["description"]))
            elif status == "success" and was_red:
                resolved += 1
        s.emit(ts, rec)
    return s, expected, incidents, {"pipeline_failed": resolved}


# ---------------------------------------------------------------------------------------------
# support-tickets


def _gen_tickets(rng: random.Random, n: int, start: float, end: float, fmt: Formatter,
                 plan: dict[str, int]) -> tuple[_Stream, dict[str, int], list[Incident],
                                                dict[str, int]]:
    s = _Stream("support-tickets", fmt, end)
    expected: dict[str, int] = defaultdict(int)
    incidents: list[Incident] = []
    n_tickets = max(1, n // 3)
    created = diurnal_times(rng, n_tickets, start, end)
    n_breach = plan.get("sla_breach", 0)
    span = end - start
    # Breaches: urgent or high tickets (normal too when the span allows) answered at
    # 1.2-1.8x SLA, so the breach fires once and no 2x-SLA apology is due.
    breach_prios = [p for p in ("urgent", "high", "normal") if SLA_HOURS[p] * 3600 * 2.2 < span]
    breach_times = _spaced_starts(rng, n_breach, start + span * 0.1,
                                  end - 2.0 * SLA_HOURS[breach_prios[-1] if breach_prios
                                                         else "urgent"] * 3600, 600.0)
    tid = rng.randint(100000, 200000)
    events: list[tuple[float, int, dict[str, Any]]] = []
    seq = 0

    def ticket(ts: float, priority: str, respond_after: float) -> None:
        nonlocal tid, seq
        tid += rng.randint(1, 3)
        tkt = f"TCK-{tid}"
        category = rng.choice(_TICKET_CATEGORIES)
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        company = rng.choice(_COMPANIES)
        subject = rng.choice(_SUBJECTS[category])
        base = {"ticket_id": tkt, "priority": priority, "category": category}
        events.append((ts, seq, {"timestamp": None, "event": "created", **base,
                                 "customer_name": f"{first.title()} {last.title()}",
                                 "customer_email": f"{first}.{last}@{company}.example",
                                 "subject": subject,
                                 "description": f"{subject}. Customer reports it started "
                                                f"{rng.choice(_WHEN)}."}))
        assignee = rng.choice(_AGENTS)
        t_resp = ts + respond_after
        events.append((t_resp, seq + 1, {"timestamp": None, "event": "responded", **base,
                                         "assignee": assignee}))
        t_res = t_resp + rng.expovariate(1 / (SLA_HOURS[priority] * 3600 * 0.8))
        events.append((t_res, seq + 2, {"timestamp": None, "event": "resolved", **base,
                                        "assignee": assignee,
                                        "resolution": rng.choice(_RESOLUTIONS),
                                        "feedback_url":
                                            f"https://support.example.com/feedback/{tkt}"}))
        seq += 3

    prios = _weighted(rng, (("urgent", 5), ("high", 20), ("normal", 55), ("low", 20)),
                      n_tickets)
    for ts, prio in zip(created, prios, strict=True):
        ticket(ts, prio, SLA_HOURS[prio] * 3600 * rng.uniform(0.03, 0.7))
    for k, ts in enumerate(breach_times):
        prio = breach_prios[k % len(breach_prios)] if breach_prios else "urgent"
        sla = SLA_HOURS[prio] * 3600
        ticket(ts, prio, sla * rng.uniform(1.2, 1.8))
        # A ticket created a few minutes after the deadline moves the watermark past it
        # before the late answer arrives, whatever the background density.
        ticket(ts + sla + rng.uniform(180, 600), "low", 3600 * rng.uniform(1, 8))
        expected["sla_breach"] += 1
        incidents.append(Incident("sla_breach", "support-tickets", ts + sla,
                                  {"ticket_id": events[-6][2]["ticket_id"]},
                                  f"{prio} ticket not answered within {SLA_HOURS[prio]} h"))
    events.sort(key=lambda e: (e[0], e[1]))
    for ts, _, rec in events:
        if ts >= end:
            continue
        if rec["event"] == "created":
            expected["ticket_created"] += 1
        elif rec["event"] == "resolved":
            expected["ticket_resolved"] += 1
        s.emit(ts, rec)
    # every breached ticket is answered (at 1.2-1.8x SLA) before the end: one resolved each
    return s, expected, incidents, {"sla_breach": expected["sla_breach"]}


# ---------------------------------------------------------------------------------------------
# business-metrics


def _gen_business(rng: random.Random, n: int, start: float, end: float, fmt: Formatter,
                  plan: dict[str, int]) -> tuple[_Stream, dict[str, int], list[Incident]]:
    """Daily KPIs, reported at 00:05 UTC for the day before. ``n`` / 4 days end at ``end``."""
    s = _Stream("business-metrics", fmt, end)
    expected: dict[str, int] = defaultdict(int)
    incidents: list[Incident] = []
    days = max(3, n // 4)
    last_midnight = math.floor(end / 86400.0) * 86400.0
    if last_midnight + 300 >= end:
        last_midnight -= 86400.0
    first_day = last_midnight - days * 86400.0  # the day the first report covers
    target = 100_000.0
    # Incident days: spaced >= 3 days apart, never the first two days.
    kinds = (["revenue_drop"] * plan.get("revenue_drop", 0)
             + ["revenue_target_missed"] * plan.get("revenue_target_missed", 0)
             + ["revenue_target_exceeded"] * plan.get("revenue_target_exceeded", 0))
    below = ["conversion_rate", "daily_active_users", "session_duration"]
    below_kinds = [below[i % 3] for i in range(plan.get("metric_below", 0))]
    candidates = list(range(2, days, 3))
    rng.shuffle(candidates)
    rev_days = dict(zip(sorted(candidates[:len(kinds)]), kinds, strict=False))
    candidates2 = list(range(1, days, 2))
    rng.shuffle(candidates2)
    below_days = dict(zip(candidates2[:len(below_kinds)], below_kinds, strict=False))
    prev = 100_000.0
    for d in range(days):
        day_start = first_day + d * 86400.0
        ts = day_start + 86400.0 + 300.0 + rng.uniform(0, 60)
        date = time.strftime("%Y-%m-%d", time.gmtime(day_start))
        weekend = time.gmtime(day_start).tm_wday >= 5
        kind = rev_days.get(d)
        if kind == "revenue_drop":
            rev = prev * rng.uniform(0.74, 0.82)
            if 0.78 * target < rev < 0.82 * target:  # stay clear of the 80% target line
                rev = 0.83 * target if rev > 0.8 * target else 0.77 * target
        elif kind == "revenue_target_missed":
            rev = rng.uniform(66_000, 78_000)
            if -0.17 < (rev - prev) / prev < -0.13:  # stay clear of the -15% drop line
                rev = prev * 0.88 if prev * 0.88 < 78_000 else prev * 0.8
        elif kind == "revenue_target_exceeded":
            rev = rng.uniform(121_000, 128_000)
        else:
            goal = target * (0.93 if weekend else 1.03) * rng.uniform(0.95, 1.05)
            rev = min(max(goal, prev * 0.91, 81_000.0), prev * 1.09, 119_000.0)
            rev = max(rev, 81_000.0)
        rev = round(rev, 2)
        change = (rev - prev) / prev
        # Count by the documented rules (margins keep values off the thresholds).
        fired = []
        if rev < 0.8 * target:
            fired.append("revenue_target_missed")
        if change < -0.15:
            fired.append("revenue_drop")
        if rev >= 1.2 * target:
            fired.append("revenue_target_exceeded")
        for k in fired:
            expected[k] += 1
            incidents.append(Incident(k, "business-metrics", ts, {"metric": "revenue"},
                                      f"{date}: {rev:,.0f} vs {prev:,.0f} (target "
                                      f"{target:,.0f})"))
        s.emit(ts, {"timestamp": None, "metric": "revenue", "daily_revenue": rev,
                    "previous_day_revenue": round(prev, 2), "daily_target": target,
                    "currency": "USD", "date": date})
        prev = rev
        low = below_days.get(d)
        values = {
            "conversion_rate": (round(rng.uniform(0.021, 0.027), 4) if low == "conversion_rate"
                                else round(rng.uniform(0.034, 0.048), 4)),
            "daily_active_users": (rng.randint(7000, 9200) if low == "daily_active_users"
                                   else rng.randint(12000, 19000) - (2000 if weekend else 0)),
            "session_duration": (round(rng.uniform(220, 280), 1) if low == "session_duration"
                                 else round(rng.uniform(330, 560), 1)),
        }
        for j, (metric, value) in enumerate(values.items()):
            s.emit(ts + j + 1, {"timestamp": None, "metric": metric, "value": value,
                                "date": date})
        if low:
            expected["metric_below"] += 1
            incidents.append(Incident("metric_below", "business-metrics", ts,
                                      {"metric": low}, f"{date}: {low} = {values[low]}"))
    return s, expected, incidents


# ---------------------------------------------------------------------------------------------
# Entry points


def default_plan(family: str, n: int) -> dict[str, int]:
    """How many incidents of each kind ``n`` events of ``family`` get by default."""
    if family == "auth-logs":
        return {"brute_force": max(1, n // 5000), "compromise": max(1, n // 40000),
                "password_spray": max(1, n // 25000),
                "distributed_brute_force": max(1, n // 25000),
                "unusual_login": max(1, n // 25000)}
    if family == "api-access-logs":
        return {"sql_injection": max(1, n // 8000), "rate_abuse": n // 20000}
    if family == "host-metrics":
        hosts = max(4, min(5000, n // 400))
        return {"metric_threshold": max(1, min(hosts // 3, n // 4000)),
                "host_silent": max(1, min(hosts // 6, n // 10000))}
    if family == "cicd-events":
        return {"pipeline_failed": max(1, round(n * 0.07)),
                "deployment_production": max(1, round(n * 0.04))}
    if family == "support-tickets":
        return {"sla_breach": max(1, n // 250)}
    if family == "business-metrics":
        days = max(3, n // 4)
        return {"revenue_drop": 1 if days >= 6 else 0,
                "revenue_target_missed": 1 if days >= 9 else 0,
                "revenue_target_exceeded": 1 if days >= 12 else 0,
                "metric_below": min(3, days // 4)}
    raise ValueError(family)


def split_events(scenario: str, n_events: int) -> dict[str, int]:
    """How ``n_events`` are shared between the scenario's families."""
    families = scenario_families(scenario)
    if len(families) == 1:
        return {families[0]: n_events}
    weights = {f: MIX.get(f, 0.0) for f in families if f != "business-metrics"}
    total = sum(weights.values())
    out = {f: int(n_events * w / total) for f, w in weights.items()}
    if "business-metrics" in families:
        out["business-metrics"] = max(12, min(400, n_events // 2000))
    return out


def scenario_families(scenario: str) -> tuple[str, ...]:
    try:
        return SCENARIOS[scenario]
    except KeyError:
        raise ValueError(f"unknown scenario {scenario!r}; use one of "
                         f"{', '.join(sorted(SCENARIOS))}") from None


_GENERATORS = {"auth-logs": _gen_auth, "api-access-logs": _gen_api,
               "host-metrics": _gen_hosts, "cicd-events": _gen_cicd,
               "support-tickets": _gen_tickets, "business-metrics": _gen_business}


def generate(scenario: str = "mixed", n_events: int = 10_000, seed: int = 1,
             start_ts: float | None = None, *, duration: float | None = None,
             ts_format: str = "iso", incidents: dict[str, int] | None = None,
             sizes: dict[str, int] | None = None) -> Traffic:
    """Generate about ``n_events`` records for ``scenario`` (a family or a mix).

    ``start_ts``/``duration`` (seconds) place the traffic on the time line; by default it
    covers the 3 days before ``DEFAULT_END``. ``incidents`` overrides the number of incidents
    per kind (``brute_force``, ``compromise``, ``password_spray``,
    ``distributed_brute_force``, ``unusual_login``, ``sql_injection``, ``rate_abuse``,
    ``metric_threshold``, ``host_silent``, ``pipeline_failed``, ``deployment_production``,
    ``sla_breach``, ``revenue_drop``, ``revenue_target_missed``, ``revenue_target_exceeded``,
    ``metric_below``); 0 turns a kind off. ``sizes`` sets events per family directly.
    The same arguments always give the same records.
    """
    duration = float(duration if duration is not None else DEFAULT_DURATION)
    if start_ts is None:
        start_ts = DEFAULT_END - duration
    end_ts = start_ts + duration
    fmt = Formatter(ts_format)
    per_family = dict(sizes) if sizes else split_events(scenario, n_events)
    records: dict[str, list[dict[str, Any]]] = {}
    times: dict[str, list[float]] = {}
    expected: dict[str, int] = {}
    resolved: dict[str, int] = {}
    all_incidents: list[Incident] = []
    for index, family in enumerate(FAMILIES):
        if family not in per_family:
            continue
        n = per_family[family]
        plan = default_plan(family, n)
        if incidents:
            plan.update({k: v for k, v in incidents.items() if k in plan})
        rng = random.Random(seed * 1_000_003 + index)
        result = _GENERATORS[family](rng, n, start_ts, end_ts, fmt, plan)
        stream, exp, incs = result[0], result[1], result[2]
        if len(result) == 4:
            for k, v in result[3].items():  # type: ignore[misc]
                resolved[k] = resolved.get(k, 0) + v
        for kind in KINDS_BY_FAMILY[family]:
            expected[kind] = expected.get(kind, 0) + exp.get(kind, 0)
        rows = stream.out
        rows.sort(key=lambda r: r[0])  # stable: ties keep generation order
        times[family] = [r[0] for r in rows]
        records[family] = [r[1] for r in rows]
        all_incidents.extend(incs)
    all_incidents.sort(key=lambda i: (i.start, i.kind))
    return Traffic(scenario, seed, start_ts, end_ts, records, times, expected, resolved,
                   all_incidents, ts_format)


def generate_bytes(scenario: str = "mixed", n_events: int = 10_000, seed: int = 1,
                   start_ts: float | None = None, **kwargs: Any) \
        -> tuple[list[tuple[str, bytes | None, bytes]], dict[str, int]]:
    """The fast path for benchmarks: (family, key, JSON bytes) in event-time order + expected."""
    traffic = generate(scenario, n_events, seed, start_ts, **kwargs)
    return traffic.merged_bytes(), traffic.expected


# ---------------------------------------------------------------------------------------------
# The sample streams in topics/ (regenerate with `python -m streamproc.generate topics/`)

SAMPLE_SEED = 2026
# family -> (events, duration in seconds, incidents); all end at DEFAULT_END.
SAMPLE_SPECS: dict[str, tuple[int, float, dict[str, int]]] = {
    "auth-logs": (2500, 3 * 86400.0, {"brute_force": 2, "compromise": 1, "password_spray": 1,
                                      "distributed_brute_force": 1, "unusual_login": 1}),
    "api-access-logs": (3000, 86400.0, {"sql_injection": 3, "rate_abuse": 1}),
    "host-metrics": (2400, 12 * 3600.0, {"metric_threshold": 3, "host_silent": 1}),
    "cicd-events": (300, 3 * 86400.0, {"pipeline_failed": 4, "deployment_production": 3}),
    "support-tickets": (450, 3 * 86400.0, {"sla_breach": 2}),
    "business-metrics": (240, 60 * 86400.0, {"revenue_drop": 1, "revenue_target_missed": 1,
                                             "revenue_target_exceeded": 1, "metric_below": 3}),
}


def sample_traffic(family: str) -> Traffic:
    n, duration, plan = SAMPLE_SPECS[family]
    return generate(family, n, seed=SAMPLE_SEED, duration=duration, incidents=plan)


def write_samples(directory: str) -> dict[str, Traffic]:
    """Write ``DIR/<family>.jsonl`` for every family; returns the Traffic behind each."""
    out = {}
    for family in FAMILIES:
        traffic = sample_traffic(family)
        traffic.write_jsonl(directory)
        out[family] = traffic
    return out


_README_HEAD = """# Event contracts and sample streams

Each family has a contract (`<family>.yaml`: fields, types, required fields, partition key,
default Kafka topic and MQTT filter) and a sample stream (`<family>.jsonl`, one JSON record
per line, event-time order, ISO 8601 timestamps in UTC with `Z`). Every sample ends at
2026-03-02T00:00:00Z.

The same format describes families of your own: name the files with `families_dir:` (a
folder of `*.yaml`) or `contracts:` (files or folders) in the config. Keys: `family` (lower
case letters, digits, `.`, `_`, `-`; not a built-in family's name), `description`,
`kafka_topic` (default: the family), `mqtt_topic` (default `streamproc/<family>/#`), `key`
(fields, the first present is the partition key), `sample` (a JSONL file next to the
contract) and `fields`: each `{type, required, enum, doc}` with `type` one of string, int,
number, bool, timestamp and `enum` only on a string field. A family needs
`timestamp: {type: timestamp, required: true}`: every detector judges by event time. Errors
name the contract's file and line; `streamproc check-config` lists the families loaded. The
worked example (Falco) is in `docs/detectors.md`, "Your own event families".

The samples are generated by `streamproc.generate` (Zipf-distributed users, IPs, hosts and
projects, a diurnal load curve, realistic field values) with a fixed seed, so they are
reproducible byte for byte; this file is written by the same command:

    python -m streamproc.generate topics/

The background traffic is constrained so that it cannot raise alerts of the counted kinds by
accident (never 4+ failed logins of one username+ip within an hour, never 10+ distinct failing
users from one IP within 10 minutes, no API client near 600 requests in 5 minutes, host
metrics below every threshold, tickets answered well within SLA, day-over-day revenue moves
under 10%). The incidents below are the only ones, and their counts are exact for the default
detector settings. `tests/test_generate.py` replays the samples through the detectors.

Counting rules (`streamproc.generate.count_alerts`): firing alerts per kind; for
`pipeline_failed` only failures (severity above info; successes are info); internal alerts
only (ticket_created and ticket_resolved also send a customer notice each, not counted;
breaches are answered at 1.2-1.8x the SLA, so no 2x-SLA customer apology is due). A
compromise is a brute force followed by a success from the attacker's address: it counts once
for brute_force, compromise_suspected and (a new network and country for that user)
unusual_login.

## Expected alerts (firing, default thresholds)

| file | records | first event | expected alerts | resolved |
|---|---|---|---|---|
"""


def render_readme(samples: dict[str, Traffic]) -> str:
    """topics/README.md: the expected alerts and every incident of the sample streams."""
    def iso(ts: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))

    lines = [_README_HEAD.rstrip("\n")]
    for family, traffic in samples.items():
        counts = ", ".join(f"{k} {v}" for k, v in traffic.expected.items() if v)
        resolved = ", ".join(f"{k} {v}" for k, v in traffic.resolved.items() if v) or "-"
        first = iso(traffic.times[family][0]) if traffic.times[family] else "-"
        lines.append(f"| {family}.jsonl | {len(traffic):,} | {first} | {counts} | {resolved} |")
    lines.append("")
    lines.append("## The incidents")
    for family, traffic in samples.items():
        lines += ["", f"### {family}.jsonl", "", "| event time | kind | key | what happens |",
                  "|---|---|---|---|"]
        for inc in traffic.incidents:
            if inc.kind == "deployment":
                continue
            key = ", ".join(f"{v}" for v in inc.key.values())
            note = inc.note.replace("|", "\\|")
            lines.append(f"| {iso(inc.start)} | {inc.kind} | {key} | `{note}` |"
                         if family == "api-access-logs" and inc.kind == "sql_injection"
                         else f"| {iso(inc.start)} | {inc.kind} | {key} | {note} |")
        deploys = [i for i in traffic.incidents if i.kind == "deployment"]
        if deploys:
            lines.append("")
            lines.append(f"Production deployments ({traffic.expected['deployment']} deployments "
                         f"in all, dev and staging included; each raises a `deployment` alert):")
            lines += [f"- {iso(i.start)} {i.key['service']} {i.note}" for i in deploys]
    return "\n".join(lines) + "\n"


def _main(argv: list[str] | None = None) -> int:
    import sys

    args = sys.argv[1:] if argv is None else argv
    directory = args[0] if args else "topics"
    samples = write_samples(directory)
    with open(f"{directory}/README.md", "w") as fh:
        fh.write(render_readme(samples))
    for family, traffic in samples.items():
        counts = {k: v for k, v in traffic.expected.items() if v}
        print(f"{family}: {len(traffic)} records, expected {counts}, resolved "
              f"{traffic.resolved or {}}")
        for inc in traffic.incidents:
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(inc.start))
            print(f"    {when} {inc.kind} {inc.key} {inc.note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())

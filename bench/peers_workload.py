"""The peer workload: the auth stream that stream processors are compared on, and the exact
brute_force alerts it must raise.

One day of JSON auth events (~220 B each) for ``USERS`` users, keyed by username on
``PARTITIONS`` partitions, in event-time order. About 2% are failed logins:

- background: successes by a Zipf law over users (busy accounts log in a lot); failures of
  users drawn uniformly, sometimes several in a row (a burst of 2-4 within a minute); two
  bursts of one user within an hour reach 5 failures, and then the rule fires for them too
  (the expectation is computed from the data, not assumed);
- bursts: an attacker tries one user from one address, 6-30 failures within minutes;
- persistent attackers: one failure every 7-9 minutes for 2-3 hours, so the rule fires
  again once each realert period is over (one alert per incident);
- near misses: 4 failures of one user from one address within the hour, never a 5th;
- slow attackers: 5 failures, the 5th exactly one hour after the first (inside: both window
  edges are inclusive) or 1 ms / 1 s more than an hour after it (outside);
- campaigns: one address tries 20-40 users, 5-7 failures each (an alert per user), and 3-4
  failures on some of them (none).

Attackers use first octets that the background never uses, and each attack its own address
(a campaign one for all its users), so attacks of different kinds never share a key.

``expected_alerts`` is the rule as brute_force documents it, written out plainly and apart
from the detector: a failure fires for (username, ip_address) when the failures of that key
within the hour ending at it (both edges inclusive) number at least 5, unless the key fired
less than ``realert`` (one hour) before; the incident starts at the first failure in that hour.
Event times are whole milliseconds, so every comparison here is exact.
"""

from __future__ import annotations

import bisect
import random
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

TOPIC = "peer-auth"
PARTITIONS = 4
DEFAULT_EVENTS = 1_000_000
USERS = 50_000
THRESHOLD = 5
WINDOW_MS = 3_600_000
REALERT_MS = WINDOW_MS
# A fixed day in the past (records far ahead of the clock are rejected live).
END_MS = int(datetime(2026, 3, 2, tzinfo=UTC).timestamp() * 1000)
SPAN_MS = 86_400_000
BACKGROUND_FAILURE_RATE = 0.010
BURSTY_SHARE = 0.3  # of background failures: followed by 1-3 more within a minute

# Attack patterns per million events (scaled down for small runs, at least one of each).
PLAN = {
    "burst": 150,
    "persistent": 8,
    "near_miss": 100,
    "slow_inside": 20,
    "slow_outside": 20,
    "campaign": 4,
}

_USER_OCTETS = (24, 31, 46, 62, 73, 81, 86, 92, 98, 109, 151, 176, 203)
_ATTACK_OCTETS = (5, 45, 89, 103, 185, 193, 194)
_FIRST = (
    "alice",
    "bob",
    "carol",
    "dave",
    "erin",
    "frank",
    "grace",
    "heidi",
    "ivan",
    "judy",
    "mallory",
    "niaj",
    "olivia",
    "peggy",
    "rupert",
    "sybil",
    "trent",
    "victor",
    "walter",
    "arjun",
    "mei",
    "sofia",
    "lucas",
    "omar",
    "zoe",
    "yuki",
    "lena",
    "noah",
    "emma",
    "ali",
)
_LAST = (
    "smith",
    "jones",
    "bauer",
    "garcia",
    "kim",
    "martin",
    "rossi",
    "novak",
    "silva",
    "chen",
    "dubois",
    "khan",
    "ito",
    "larsen",
    "moreau",
    "weber",
    "costa",
    "singh",
)
_UAS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/122.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_3) Version/17.3 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X) Mobile/15E148",
    "OpenSSH_9.6p1",
    "GlobalProtect/6.1.1",
    "okhttp/4.12.0",
)
_ATTACK_UAS = ("python-requests/2.31.0", "hydra/9.5", "Go-http-client/1.1", "curl/8.5.0")
_COUNTRIES = ("US", "DE", "GB", "FR", "NL", "IN", "BR", "JP", "CA", "SE", "ES", "IT")
_ATTACK_COUNTRIES = ("RU", "CN", "KP", "IR", "VN", "NG")
_SERVICES = ("sso", "vpn", "ssh", "sso", "webmail")


@dataclass(frozen=True, slots=True)
class AuthEvent:
    ts_ms: int
    username: str
    ip: str
    success: bool
    user_agent: str
    country: str
    service: str


# (username, ip_address, first failure in the window, the failure that fired), in ms
ExpectedAlert = tuple[str, str, int, int]


@dataclass
class PeerWorkload:
    events: list[AuthEvent]  # event-time order
    expected: set[ExpectedAlert]
    # attack pattern -> the (username, ip_address) keys it attacked
    attacks: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.events)

    @property
    def injected(self) -> dict[str, int]:
        return {pattern: len(keys) for pattern, keys in self.attacks.items()}

    @property
    def failures(self) -> int:
        return sum(1 for e in self.events if not e.success)

    def encoded(self) -> list[tuple[bytes, bytes]]:
        """(key, JSON value) per event: keyed by username, ISO timestamps with milliseconds."""
        dumps = orjson.dumps
        fmt = _IsoMs()
        return [
            (
                e.username.encode(),
                dumps(
                    {
                        "timestamp": fmt(e.ts_ms),
                        "username": e.username,
                        "ip_address": e.ip,
                        "success": e.success,
                        "user_agent": e.user_agent,
                        "country": e.country,
                        "service": e.service,
                    }
                ),
            )
            for e in self.events
        ]

    def kafka_items(self, topic: str = TOPIC) -> list[tuple[str, bytes | None, bytes]]:
        return [(topic, k, v) for k, v in self.encoded()]


class _IsoMs:
    """Epoch ms -> ``2026-03-01T12:34:56.789Z`` (the date part cached per second)."""

    def __init__(self) -> None:
        self._sec = -1
        self._text = ""

    def __call__(self, ms: int) -> str:
        sec, frac = divmod(ms, 1000)
        if sec != self._sec:
            self._sec = sec
            self._text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        return f"{self._text}.{frac:03d}Z"


def expected_alerts(events: list[AuthEvent]) -> set[ExpectedAlert]:
    """The brute_force alerts ``events`` (in event-time order) must raise, by the rule alone.

    failures of one (username, ip_address):
    --x----x--x-----x------x--------x---> event time
      |<------ 1 h, both edges in ----->|
                             ^ 5th within the hour ending here: FIRE, then quiet 1 h
    """
    recent: dict[tuple[str, str], deque[int]] = {}
    quiet_until: dict[tuple[str, str], int] = {}
    out: set[ExpectedAlert] = set()
    for e in events:
        if e.success:
            continue
        key = (e.username, e.ip)
        window = recent.get(key)
        if window is None:
            window = recent[key] = deque()
        window.append(e.ts_ms)
        while window[0] < e.ts_ms - WINDOW_MS:
            window.popleft()
        if len(window) >= THRESHOLD and e.ts_ms >= quiet_until.get(key, e.ts_ms):
            out.add((e.username, e.ip, window[0], e.ts_ms))
            quiet_until[key] = e.ts_ms + REALERT_MS
    return out


def generate_peers(n: int = DEFAULT_EVENTS, seed: int = 1) -> PeerWorkload:
    """About ``n`` events (attacks are added on top of ``n`` minus their share)."""
    rng = random.Random(seed)
    scale = n / 1_000_000
    n_users = max(50, min(USERS, n // 20))
    start = END_MS - SPAN_MS
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < n_users:
        name = (
            f"{rng.choice(_FIRST)}.{rng.choice(_LAST)}"
            if rng.random() < 0.3
            else f"{rng.choice(_FIRST)}.{rng.choice(_LAST)}{rng.randrange(1, 1000)}"
        )
        if name not in seen:
            seen.add(name)
            names.append(name)
    homes = [
        [_ip(rng, _USER_OCTETS) for _ in range(rng.choice((1, 1, 1, 2)))] for _ in range(n_users)
    ]
    agents = [rng.choice(_UAS) for _ in range(n_users)]
    countries = [rng.choice(_COUNTRIES) for _ in range(n_users)]
    events: list[AuthEvent] = []
    attacks: dict[str, list[tuple[str, str]]] = {p: [] for p in (*PLAN, "campaign_short")}
    used_ips: set[str] = set()

    def attack_ip() -> str:
        while True:
            ip = _ip(rng, _ATTACK_OCTETS)
            if ip not in used_ips:
                used_ips.add(ip)
                return ip

    def attacked(pattern: str, u: int, ip: str) -> None:
        attacks[pattern].append((names[u], ip))

    def fail(ts: int, u: int, ip: str, ua: str, country: str) -> None:
        events.append(
            AuthEvent(ts, names[u], ip, False, ua, country, _SERVICES[u % len(_SERVICES)])
        )

    # attacks start in the first 20 h, so each one (3 h at most) ends within the day
    def attack_start() -> int:
        return start + rng.randrange(0, SPAN_MS - 4 * 3_600_000)

    def attacker() -> tuple[str, str, str]:
        return attack_ip(), rng.choice(_ATTACK_UAS), rng.choice(_ATTACK_COUNTRIES)

    def count(pattern: str) -> int:
        return max(1, round(PLAN[pattern] * scale))

    for _ in range(count("burst")):
        u, (ip, ua, cc), t0 = rng.randrange(n_users), attacker(), attack_start()
        k, span = rng.randint(6, 30), rng.randint(60_000, 1_500_000)
        attacked("burst", u, ip)
        for i in range(k):
            fail(t0 + span * i // (k - 1), u, ip, ua, cc)
    for _ in range(count("persistent")):
        u, (ip, ua, cc), t = rng.randrange(n_users), attacker(), attack_start()
        end = t + rng.randint(2 * 3_600_000, 3 * 3_600_000)
        attacked("persistent", u, ip)
        while t < end:
            fail(t, u, ip, ua, cc)
            t += rng.randint(400_000, 560_000)
    for _ in range(count("near_miss")):
        u, (ip, ua, cc), t0 = rng.randrange(n_users), attacker(), attack_start()
        attacked("near_miss", u, ip)
        for _ in range(4):
            fail(t0 + rng.randrange(0, WINDOW_MS), u, ip, ua, cc)
    for pattern, overs in (("slow_inside", (0,)), ("slow_outside", (1, 1000))):
        for _ in range(count(pattern)):
            u, (ip, ua, cc) = rng.randrange(n_users), attacker()
            t0 = attack_start() // 1000 * 1000  # a whole second
            last = t0 + WINDOW_MS + rng.choice(overs)
            attacked(pattern, u, ip)
            for t in (t0, t0 + 900_000, t0 + 1_800_000, t0 + 2_700_000, last):
                fail(t, u, ip, ua, cc)
    for _ in range(count("campaign")):
        (ip, ua, cc), t = attacker(), attack_start()
        for u in rng.sample(range(n_users), min(n_users // 2, rng.randint(20, 40))):
            k = rng.choice((3, 4, 5, 5, 6, 7))
            attacked("campaign" if k >= THRESHOLD else "campaign_short", u, ip)
            for i in range(k):
                fail(t + i * rng.randint(20_000, 60_000), u, ip, ua, cc)
            t += rng.randint(30_000, 120_000)

    # Background: Zipf-distributed users at uniform times; failures, some in bursts.
    n_background = max(0, n - len(events))
    cum, total = [], 0.0
    for rank in range(1, n_users + 1):
        total += rank**-1.05
        cum.append(total)
    rnd = rng.random
    made = 0
    while made < n_background:
        ok = rnd() >= BACKGROUND_FAILURE_RATE
        # busy (often automated) accounts log in a lot; anyone mistypes a password now and
        # then: a failure's user is drawn uniformly, a success's by activity
        u = min(bisect.bisect_left(cum, rnd() * total), n_users - 1) if ok else int(rnd() * n_users)
        ts = start + int(rnd() * SPAN_MS)
        home = homes[u]
        ip = home[0] if len(home) == 1 else home[int(rnd() * len(home))]
        service = _SERVICES[u % len(_SERVICES)]
        events.append(AuthEvent(ts, names[u], ip, ok, agents[u], countries[u], service))
        made += 1
        if not ok and rnd() < BURSTY_SHARE:
            for _ in range(min(rng.randint(1, 3), n_background - made)):
                ts += rng.randint(2_000, 20_000)
                events.append(AuthEvent(ts, names[u], ip, False, agents[u], countries[u], service))
                made += 1
    events.sort(key=lambda e: e.ts_ms)
    return PeerWorkload(events=events, expected=expected_alerts(events), attacks=attacks)


def _ip(rng: random.Random, octets: tuple[int, ...]) -> str:
    return (
        f"{rng.choice(octets)}.{rng.randrange(1, 255)}.{rng.randrange(0, 256)}."
        f"{rng.randrange(2, 254)}"
    )

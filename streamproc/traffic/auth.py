"""auth-logs traffic: users logging in from their usual site, and the attacks the auth
detectors exist for.

Incidents: brute force (one user+address failing past brute_force's threshold), compromise
(a brute force then a success from the attacker's address), password spray (one address
failing for more usernames than password_spray's threshold), distributed brute force (one
user failing from more addresses and networks than distributed_brute_force's thresholds) and
unusual login (a known user signing in from a new network and country). Every size and span
is read from the detectors' defaults, so each incident raises its alert exactly once.

The background cannot raise any of them: a failure that would bring one user+address within
two of brute_force's threshold in its window, or one address to 40% of password_spray's
threshold of distinct failing users in its window, is turned into a success; users sign in
from one site (one to four addresses of one /24) in one country; attackers use first octets
(``ATTACKER_OCTETS``) that the background never uses.
"""

from __future__ import annotations

import heapq
import random
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .expected import detector_defaults
from .result import Incident
from .sampling import net24, random_ip, weighted, zipf_cum
from .stream import FamilyStream, FamilyTraffic
from .timeline import Formatter, diurnal_times, spaced_starts
from .vocabulary import (
    ATTACK_COUNTRIES,
    ATTACK_UAS,
    ATTACKED_SERVICES,
    ATTACKER_OCTETS,
    BROWSER_UAS,
    CLIENT_UAS,
    FIRST_NAMES,
    LAST_NAMES,
    LOGIN_SERVICES,
    SERVICE_ACCOUNTS,
    SPRAY_NAMES,
    USER_COUNTRIES,
    USER_OCTETS,
)

FAMILY = "auth-logs"
# The kinds this traffic is counted for, in the order reports list them.
KINDS: tuple[str, ...] = (
    "brute_force",
    "password_spray",
    "distributed_brute_force",
    "compromise_suspected",
    "unusual_login",
)


def default_plan(n: int) -> dict[str, int]:
    """How many incidents of each kind ``n`` auth-logs events get by default."""
    return {
        "brute_force": max(1, n // 5000),
        "compromise": max(1, n // 40000),
        "password_spray": max(1, n // 25000),
        "distributed_brute_force": max(1, n // 25000),
        "unusual_login": max(1, n // 25000),
    }


@dataclass(frozen=True, slots=True)
class AuthRules:
    """The auth detectors' default settings, and the incident sizes and background limits
    derived from them."""

    bf_threshold: int
    bf_window: float
    ps_threshold: int
    ps_window: float
    db_window: float
    db_realert: float
    min_history: int
    # Incident sizes: (fewest, most) failures, usernames or addresses.
    brute_k: tuple[int, int]
    compromise_k: tuple[int, int]
    spray_k: tuple[int, int]
    distributed_k: tuple[int, int]
    # Background: failures of one user+address per brute_force window, and distinct failing
    # users of one address per password_spray window.
    pair_cap: int
    address_cap: int

    @classmethod
    def from_defaults(cls) -> AuthRules:
        bf = detector_defaults("brute_force")
        ps = detector_defaults("password_spray")
        db = detector_defaults("distributed_brute_force")
        bf_threshold, ps_threshold = int(bf["threshold"]), int(ps["threshold"])
        # It fires on either many addresses or many networks; an attack takes a new /24 for
        # each address, so it passes both.
        db_threshold = max(int(db["threshold"]), int(db["network_threshold"]))
        db_window = float(db["window"])
        return cls(
            bf_threshold=bf_threshold,
            bf_window=float(bf["window"]),
            ps_threshold=ps_threshold,
            ps_window=float(ps["window"]),
            db_window=db_window,
            db_realert=float(db["realert"]) or db_window,
            min_history=int(detector_defaults("unusual_login")["min_history"]),
            brute_k=(bf_threshold + 1, max(30, 2 * (bf_threshold + 1))),
            compromise_k=(bf_threshold, bf_threshold + 3),
            spray_k=(ps_threshold + 2, 2 * ps_threshold),
            distributed_k=(db_threshold + 2, 2 * db_threshold),
            pair_cap=bf_threshold - 2,
            address_cap=ps_threshold * 2 // 5,
        )


def generate(
    rng: random.Random, n: int, start: float, end: float, fmt: Formatter, plan: dict[str, int]
) -> FamilyTraffic:
    rules = AuthRules.from_defaults()
    bf_window, ps_window = rules.bf_window, rules.ps_window
    db_window, min_history = rules.db_window, rules.min_history
    known = min_history + 2  # successes a target needs before it is judged as a known user
    brute_k, compromise_k = rules.brute_k, rules.compromise_k
    spray_k, distributed_k = rules.spray_k, rules.distributed_k

    s = FamilyStream(FAMILY, fmt, end)
    n_users = max(40, min(200_000, n // 15))
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < n_users:
        r = rng.random()
        if r < 0.02:
            name = f"{rng.choice(SERVICE_ACCOUNTS)}-{rng.randrange(1, 30):02d}"
        elif r < 0.6:
            name = f"{rng.choice(FIRST_NAMES)}.{rng.choice(LAST_NAMES)}"
        else:
            name = f"{rng.choice(FIRST_NAMES)[0]}{rng.choice(LAST_NAMES)}{rng.randrange(1, 100)}"
        if name not in seen:
            seen.add(name)
            names.append(name)
    # Sites: a few office NATs shared by many users, and many home /24s.
    n_offices = max(2, n_users // 400)
    offices = []
    for _ in range(n_offices):
        net = random_ip(rng, USER_OCTETS).rsplit(".", 1)[0]
        offices.append(
            (
                [f"{net}.{rng.randrange(2, 254)}" for _ in range(rng.randint(1, 4))],
                weighted(rng, USER_COUNTRIES, 1)[0],
            )
        )
    countries = weighted(rng, USER_COUNTRIES, n_users)
    user_site: list[tuple[list[str], str]] = []
    user_ua: list[str] = []
    for i in range(n_users):
        if rng.random() < 0.55:
            user_site.append(offices[rng.randrange(n_offices)])
        else:
            net = random_ip(rng, USER_OCTETS).rsplit(".", 1)[0]
            user_site.append(
                ([f"{net}.{rng.randrange(2, 254)}" for _ in range(rng.randint(1, 2))], countries[i])
            )
        user_ua.append(
            rng.choice(BROWSER_UAS + CLIENT_UAS)
            if not names[i].startswith(("svc-", "jenkins", "ansible", "gitlab"))
            else "OpenSSH_9.6p1"
        )
    services = LOGIN_SERVICES

    successes: dict[int, int] = defaultdict(int)  # per user index, so far
    fail_pair: dict[tuple[int, str], deque[float]] = defaultdict(deque)
    fail_ip: dict[str, deque[tuple[float, int]]] = defaultdict(deque)
    busy_until: dict[int, float] = {}
    # A user takes part in one incident at a time: none within two of the longest window.
    apart = 2 * max(bf_window, db_window)
    # After a distributed attack the detector's window still holds the attackers' networks:
    # a later background failure of that user would re-evaluate it and fire again once the
    # realert period is over. Such users only succeed until then.
    quiet_until: dict[int, float] = {}
    expected: dict[str, int] = defaultdict(int)
    incidents: list[Incident] = []
    used_attack_ips: set[str] = set()

    def attack_ip() -> str:
        while True:
            ip = random_ip(rng, ATTACKER_OCTETS)
            if ip not in used_attack_ips and net24(ip) not in {
                net24(x) for x in list(used_attack_ips)[-64:]
            }:
                used_attack_ips.add(ip)
                return ip

    def pick_target(ts: float, min_successes: int) -> int:
        # Prefer users with a history (so unusual_login/compromise are judged on a known
        # user) who are not part of another incident.
        for _ in range(400):
            u = min(int(rng.paretovariate(0.9)) - 1, n_users - 1)
            if rng.random() < 0.5:
                u = rng.randrange(n_users)
            if busy_until.get(u, -1.0) < ts and successes[u] >= min_successes:
                break
        busy_until[u] = ts + apart
        return u

    def rec(
        u: int | str, ip: str, ok: bool, ua: str, country: str, service: str = "sso"
    ) -> dict[str, Any]:
        return {
            "timestamp": None,
            "username": names[u] if isinstance(u, int) else u,
            "ip_address": ip,
            "success": ok,
            "user_agent": ua,
            "country": country,
            "service": service,
        }

    def brute(ts: float, compromise: bool) -> None:
        u = pick_target(ts, known if compromise else 0)
        ip, country = attack_ip(), rng.choice(ATTACK_COUNTRIES)
        ua = rng.choice(ATTACK_UAS)
        svc = rng.choice(ATTACKED_SERVICES)
        if compromise:
            k = rng.randint(*compromise_k)
            t = ts
            for _ in range(k):
                s.push(t, rec(u, ip, False, ua, country, svc))
                t += rng.uniform(15, 50)  # all failures within minutes
            # the success comes well inside compromise_suspected's window after the fire
            s.push(t + rng.uniform(20, 120), ("success", u, rec(u, ip, True, ua, country, svc)))
            expected["brute_force"] += 1
            expected["compromise_suspected"] += 1
            incidents.append(
                Incident(
                    "compromise_suspected",
                    FAMILY,
                    ts,
                    {"username": names[u], "ip_address": ip},
                    f"{k} failures then a success (also brute_force and unusual_login)",
                )
            )
        else:
            k = rng.randint(*brute_k)
            span = rng.uniform(120, bf_window / 2)  # well inside the window: one alert
            for i in range(k):
                s.push(ts + span * i / (k - 1), rec(u, ip, False, ua, country, svc))
            expected["brute_force"] += 1
            incidents.append(
                Incident(
                    "brute_force",
                    FAMILY,
                    ts,
                    {"username": names[u], "ip_address": ip},
                    f"{k} failures in {span / 60:.0f} min",
                )
            )

    def spray(ts: float) -> None:
        ip, country, ua = attack_ip(), rng.choice(ATTACK_COUNTRIES), rng.choice(ATTACK_UAS)
        k = rng.randint(*spray_k)
        targets: list[int | str] = list(SPRAY_NAMES[: min(k, rng.randint(5, 12))])
        while len(targets) < k:
            targets.append(pick_target(ts, 0))
        span = rng.uniform(ps_window / 10, ps_window * 4 / 5)  # all within the window
        for i, u in enumerate(targets):
            s.push(ts + span * i / (k - 1), rec(u, ip, False, ua, country))
        expected["password_spray"] += 1
        incidents.append(
            Incident(
                "password_spray",
                FAMILY,
                ts,
                {"ip_address": ip},
                f"{k} usernames in {span / 60:.0f} min",
            )
        )

    def distributed(ts: float) -> None:
        u = pick_target(ts, 0)
        k = rng.randint(*distributed_k)
        span = rng.uniform(db_window / 6, db_window * 2 / 3)
        for i in range(k):
            ip = attack_ip()  # a new /24 each: the network threshold is met too
            for j in range(rng.randint(1, 2)):
                s.push(
                    ts + span * i / k + j * 7,
                    rec(u, ip, False, rng.choice(ATTACK_UAS), rng.choice(ATTACK_COUNTRIES)),
                )
        quiet_until[u] = ts + span + (db_window + rules.db_realert) + 600.0
        busy_until[u] = max(busy_until[u], quiet_until[u])
        expected["distributed_brute_force"] += 1
        incidents.append(
            Incident(
                "distributed_brute_force",
                FAMILY,
                ts,
                {"username": names[u]},
                f"{k} IPs in {span / 60:.0f} min",
            )
        )

    def unusual(ts: float) -> None:
        u = pick_target(ts, known)
        ip = random_ip(rng, ATTACKER_OCTETS[:2])  # a hotel / travel network never seen before
        used_attack_ips.add(ip)
        home = user_site[u][1]
        country = rng.choice([c for c, _ in USER_COUNTRIES if c != home])
        s.push(
            ts, ("success", u, rec(u, ip, True, user_ua[u], country, services[u % len(services)]))
        )
        incidents.append(
            Incident(
                "unusual_login",
                FAMILY,
                ts,
                {"username": names[u], "ip_address": ip},
                f"first login from {country}",
            )
        )
        # counted when emitted (needs min_history earlier successes)

    # name -> (start one, about how many events one takes)
    actions: list[tuple[str, Callable[[float], None], int]] = [
        ("brute_force", lambda t: brute(t, False), sum(brute_k) // 2),
        ("compromise", lambda t: brute(t, True), (sum(compromise_k) + 3) // 2),
        ("password_spray", spray, sum(spray_k) // 2),
        ("distributed_brute_force", distributed, sum(distributed_k) // 2 * 3 // 2),
        ("unusual_login", unusual, 1),
    ]
    n_incident_events = 0
    lo, hi = start + (end - start) * 0.15, end - min(3600.0, (end - start) * 0.1)
    for name, fn, size in actions:
        count = plan.get(name, 0)
        n_incident_events += count * size
        for t in spaced_starts(rng, count, lo, hi, 1800.0):
            s.push(t, ("trigger", fn))

    background = diurnal_times(rng, max(0, n - n_incident_events), start, end)
    cum = zipf_cum(n_users, 1.05)
    users = rng.choices(range(n_users), cum_weights=cum, k=len(background))
    fails = [rng.random() < 0.045 for _ in background]
    pair_cap, address_cap = rules.pair_cap, rules.address_cap

    def deliver_until(ts: float) -> None:
        heap = s.heap
        while heap and heap[0][0] <= ts:
            t, _, item = heapq.heappop(heap)
            if isinstance(item, tuple):
                if item[0] == "trigger":
                    item[1](t)
                    continue
                _, u, r = item
                if successes[u] >= min_history:
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
            while pair and pair[0] <= ts - bf_window:
                pair.popleft()
            by_ip = fail_ip[ip]
            while by_ip and by_ip[0][0] <= ts - ps_window:
                by_ip.popleft()
            if len(pair) >= pair_cap or len({x[1] for x in by_ip}) >= address_cap:
                fail = False
            else:
                pair.append(ts)
                by_ip.append((ts, u))
        if not fail:
            successes[u] += 1
        s.emit(
            ts,
            {
                "timestamp": None,
                "username": names[u],
                "ip_address": ip,
                "success": not fail,
                "user_agent": user_ua[u],
                "country": country,
                "service": services[u % len(services)],
            },
        )
    deliver_until(float("inf"))
    return FamilyTraffic(s, expected, incidents)

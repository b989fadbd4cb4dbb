"""api-access-logs traffic: a shop's API with Zipf-distributed clients, and the attacks the API
detectors exist for.

Incidents: SQL injection (a scanner looks around, then sends one payload from
``SQLI_PAYLOADS``) and rate abuse (a scraper sends more requests than rate_abuse's threshold,
all inside one of its windows, so it fires exactly once). The background keeps every client
under two thirds of rate_abuse's threshold per window, and attackers use first octets the
background never uses.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import defaultdict, deque
from typing import Any

from .expected import detector_defaults
from .result import Incident
from .sampling import random_ip, zipf_cum
from .stream import FamilyStream, FamilyTraffic
from .timeline import Formatter, diurnal_times, spaced_starts
from .vocabulary import (
    API_ROUTES,
    API_UAS,
    ATTACK_UAS,
    ATTACKER_OCTETS,
    CLIENT_OCTETS,
    HTTP_STATUSES,
    PRODUCT_CATEGORIES,
    SCRAPER_UAS,
    SEARCH_QUERIES,
    SQLI_PAYLOADS,
    SQLMAP_UA,
)

FAMILY = "api-access-logs"
# The kinds this traffic is counted for, in the order reports list them.
KINDS: tuple[str, ...] = ("sql_injection", "rate_abuse")


def default_plan(n: int) -> dict[str, int]:
    """How many incidents of each kind ``n`` api-access-logs events get by default."""
    return {"sql_injection": max(1, n // 8000), "rate_abuse": n // 20000}


def generate(
    rng: random.Random, n: int, start: float, end: float, fmt: Formatter, plan: dict[str, int]
) -> FamilyTraffic:
    rate_rule = detector_defaults("rate_abuse")
    ra_threshold, ra_window = int(rate_rule["threshold"]), float(rate_rule["window"])
    abuse_k = (ra_threshold + 50, 2 * ra_threshold)  # (fewest, most) requests of a scraper
    client_cap = ra_threshold * 2 // 3  # requests of one background client per window

    s = FamilyStream(FAMILY, fmt, end)
    n_ips = max(50, min(300_000, n // 10))
    ips = []
    for i in range(n_ips):
        if i % 23 == 7:
            ips.append(
                f"2001:db8:{rng.randrange(0x10000):x}:{rng.randrange(0x10000):x}::"
                f"{rng.randrange(1, 0xFFFF):x}"
            )
        else:
            ips.append(random_ip(rng, CLIENT_OCTETS))
    ip_ua = [rng.choice(API_UAS) for _ in range(n_ips)]
    expected: dict[str, int] = defaultdict(int)
    incidents: list[Incident] = []
    used: set[str] = set()

    def attack_ip() -> str:
        while True:
            ip = random_ip(rng, ATTACKER_OCTETS)
            if ip not in used:
                used.add(ip)
                return ip

    route_w = [r[2] for r in API_ROUTES]
    route_cum = list(itertools.accumulate(route_w))
    status_vals = [x[0] for x in HTTP_STATUSES]
    status_w = [x[1] for x in HTTP_STATUSES]

    def request(ip: str, ua: str) -> dict[str, Any]:
        method, tpl, _ = rng.choices(API_ROUTES, cum_weights=route_cum)[0]
        path = tpl
        if "{" in tpl:
            path = tpl.format(
                id=rng.randrange(1, 99999),
                n=rng.randrange(1, 40),
                q=rng.choice(SEARCH_QUERIES),
                cat=rng.choice(PRODUCT_CATEGORIES),
            )
        status = rng.choices(status_vals, weights=status_w)[0]
        if method == "POST" and status == 200:
            status = 201
        return {
            "timestamp": None,
            "endpoint": path,
            "method": method,
            "status_code": status,
            "ip_address": ip,
            "user_agent": ua,
            "response_time_ms": round(rng.lognormvariate(3.3, 0.7), 1),
            "bytes_sent": rng.randrange(120, 48000),
        }

    def sqli(ts: float) -> None:
        ip = attack_ip()
        ua = SQLMAP_UA if rng.random() < 0.5 else rng.choice(ATTACK_UAS)
        for k in range(rng.randint(1, 4)):  # a benign look around first
            r = request(ip, ua)
            r["status_code"] = 200
            s.push(ts - 30 * (k + 1), r)
        payload = SQLI_PAYLOADS[expected["sql_injection"] % len(SQLI_PAYLOADS)]
        s.push(
            ts,
            {
                "timestamp": None,
                "endpoint": payload,
                "method": "GET",
                "status_code": rng.choice((200, 400, 403, 500)),
                "ip_address": ip,
                "user_agent": ua,
                "response_time_ms": round(rng.uniform(5, 5100), 1),
                "bytes_sent": rng.randrange(200, 4000),
            },
        )
        expected["sql_injection"] += 1
        incidents.append(Incident("sql_injection", FAMILY, ts, {"ip_address": ip}, payload))

    def abuse(ts: float) -> None:
        ip = attack_ip()
        ua = rng.choice(SCRAPER_UAS)
        k = rng.randint(*abuse_k)
        # all inside one window: exactly one alert
        span = rng.uniform(ra_window / 5, ra_window * 4 / 5)
        for i in range(k):
            r = request(ip, ua)
            r["endpoint"] = f"/api/v1/products?category={rng.choice(PRODUCT_CATEGORIES)}&page={i}"
            r["method"] = "GET"
            if i > 500 and rng.random() < 0.3:
                r["status_code"] = 429
            s.push(ts + span * i / (k - 1), r)
        expected["rate_abuse"] += 1
        incidents.append(
            Incident("rate_abuse", FAMILY, ts, {"ip_address": ip}, f"{k} requests in {span:.0f} s")
        )

    lo, hi = start + (end - start) * 0.1, end - min(1800.0, (end - start) * 0.05)
    n_incident = 0
    for t in spaced_starts(rng, plan.get("sql_injection", 0), lo, hi, 300.0):
        s.push(t, ("trigger", sqli))
        n_incident += 3
    for t in spaced_starts(rng, plan.get("rate_abuse", 0), lo, hi, 900.0):
        s.push(t, ("trigger", abuse))
        n_incident += sum(abuse_k) // 2

    background = diurnal_times(rng, max(0, n - n_incident), start, end)
    cum = zipf_cum(n_ips, 1.1)
    picks = rng.choices(range(n_ips), cum_weights=cum, k=len(background))
    recent: dict[int, deque[float]] = defaultdict(deque)
    methods = [r[0] for r in API_ROUTES]
    tpls = [r[1] for r in API_ROUTES]
    routes = rng.choices(range(len(API_ROUTES)), weights=route_w, k=len(background))
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
        while window and window[0] <= ts - ra_window:
            window.popleft()
        if len(window) >= client_cap:  # a busy client: the request goes to a quieter one
            ip_i = rng.randrange(n_ips // 2, n_ips)
            window = recent[ip_i]
            while window and window[0] <= ts - ra_window:
                window.popleft()
        window.append(ts)
        tpl = tpls[route]
        path = (
            tpl.format(
                id=int(ts * 7919) % 99991,
                n=ip_i % 37 + 1,
                q=SEARCH_QUERIES[ip_i % len(SEARCH_QUERIES)],
                cat=PRODUCT_CATEGORIES[int(ts) % len(PRODUCT_CATEGORIES)],
            )
            if "{" in tpl
            else tpl
        )
        method = methods[route]
        if method == "POST" and status == 200:
            status = 201
        s.emit(
            ts,
            {
                "timestamp": None,
                "endpoint": path,
                "method": method,
                "status_code": status,
                "ip_address": ips[ip_i],
                "user_agent": ip_ua[ip_i],
                "response_time_ms": round(12.0 + (ts * 1000 % 97) * (1 + status // 500), 1),
                "bytes_sent": 200 + int(ts * 131) % 30000,
            },
        )
    while heap:
        t, _, item = heapq.heappop(heap)
        if isinstance(item, tuple):
            item[1](t)
        else:
            s.emit(t, item)
    return FamilyTraffic(s, expected, incidents)

"""Realistic, deterministic event traffic with a known number of incidents per detector kind.

Used by ``streamproc produce`` (demos, load tests), the benchmarks (every run checks that the
expected alerts appeared) and the sample streams in ``topics/*.jsonl``.

    traffic = generate("mixed", 100_000, seed=7)
    records, expected = traffic            # {family: [record, ...]}, {kind: count}
    traffic.merged()                       # [(family, record)] in event-time order
    traffic.encoded("auth-logs")           # [(key bytes, JSON bytes)] for Kafka / MQTT

Where things are
----------------
- ``vocabulary``: the words records are made of (names, addresses, user agents, endpoints,
  hosts, projects, ticket texts).
- ``timeline`` and ``sampling``: the diurnal load curve, timestamp formats, Zipf and weighted
  draws.
- ``auth``, ``api``, ``hosts``, ``cicd``, ``tickets``, ``business``: one generator per event
  family, each with the incidents it injects and the kinds it counts.
- ``expected``: the detector settings the counts assume (read from the detectors' defaults)
  and ``count_alerts``.
- ``scenarios`` (which families, how many events each), ``compose`` (``generate``),
  ``result`` (``Traffic``), ``samples`` (``topics/`` and its README).

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
hosts, failed pipelines, deployments, SLA breaches, revenue drops and target misses). Their
sizes and spans, and the limits the background keeps to, are read from the detectors' default
parameters when the traffic is generated: the background is *constrained* so it cannot create
extra incidents of the counted kinds (each family module says how), and a changed default
changes the traffic and its counts with it.

``expected`` counts *firing* alerts per kind as docs/detectors.md defines them (``resolved``
counts the resolved alerts where the generator knows them for certain: metric_threshold,
host_silent, sla_breach and pipeline_failed). ``pipeline_failed`` counts red streaks per
project+branch (later failures while red join the incident). ``count_alerts`` counts a list of
alerts the same way: for ``pipeline_failed`` only failure/warning alerts (severity above info)
count, and only internal alerts count (a ticket's customer acknowledgement or notice is a
companion of the internal alert; breaches are answered before an apology is due).

Caveats: spans longer than unusual_login's lookback may let a long-dormant user look
"unusual"; the expected counts assume the default detector settings.
"""

from __future__ import annotations

from .compose import generate, generate_bytes
from .expected import count_alerts, detector_defaults
from .result import Incident, Traffic
from .samples import SAMPLE_SEED, SAMPLE_SPECS, render_readme, sample_traffic, write_samples
from .scenarios import (
    FAMILIES,
    KEY_FIELDS,
    KINDS_BY_FAMILY,
    MIX,
    SCENARIOS,
    default_plan,
    scenario_families,
    split_events,
)
from .timeline import DEFAULT_DURATION, DEFAULT_END, TS_FORMATS, Formatter

__all__ = [
    "DEFAULT_DURATION",
    "DEFAULT_END",
    "FAMILIES",
    "KEY_FIELDS",
    "KINDS_BY_FAMILY",
    "MIX",
    "SAMPLE_SEED",
    "SAMPLE_SPECS",
    "SCENARIOS",
    "TS_FORMATS",
    "Formatter",
    "Incident",
    "Traffic",
    "count_alerts",
    "default_plan",
    "detector_defaults",
    "generate",
    "generate_bytes",
    "render_readme",
    "sample_traffic",
    "scenario_families",
    "split_events",
    "write_samples",
]

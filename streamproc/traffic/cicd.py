"""cicd-events traffic: pipelines and deployments of Zipf-distributed projects.

``pipeline_failed`` counts red streaks: the first failure of a project+branch after a success
(or its first run) raises one alert; failures while it is red join that incident; the next
success resolves it. Every deployment raises a ``deployment`` alert; production ones are
listed as incidents.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

from .result import Incident
from .sampling import zipf_cum
from .stream import FamilyStream, FamilyTraffic
from .timeline import Formatter, diurnal_times
from .vocabulary import (
    BRANCH_FEATURES,
    DEPLOY_BOTS,
    FAIL_REASONS,
    FIRST_NAMES,
    LAST_NAMES,
    PROJECTS,
    RELEASE_NOTES,
)

FAMILY = "cicd-events"
# The kinds this traffic is counted for, in the order reports list them.
KINDS: tuple[str, ...] = ("pipeline_failed", "deployment")


def default_plan(n: int) -> dict[str, int]:
    """How many failures and production deployments ``n`` cicd-events get by default."""
    return {
        "pipeline_failed": max(1, round(n * 0.07)),
        "deployment_production": max(1, round(n * 0.04)),
    }


def generate(
    rng: random.Random, n: int, start: float, end: float, fmt: Formatter, plan: dict[str, int]
) -> FamilyTraffic:
    s = FamilyStream(FAMILY, fmt, end)
    expected: dict[str, int] = defaultdict(int)
    incidents: list[Incident] = []
    times = diurnal_times(rng, n, start, end)
    cum = zipf_cum(len(PROJECTS), 1.0)
    projects = rng.choices(PROJECTS, cum_weights=cum, k=len(times))
    authors = [f"{f}.{last}" for f, last in zip(FIRST_NAMES[:20], LAST_NAMES[:20], strict=True)]
    # Which events are failures / production deployments is decided up front so the count is
    # what the plan asked for (a realistic ~8% failure rate by default).
    n_fail = min(plan.get("pipeline_failed", 0), len(times))
    n_prod = min(plan.get("deployment_production", 0), len(times) - n_fail)
    slots = list(range(len(times)))
    rng.shuffle(slots)
    fail_at = set(slots[:n_fail])
    prod_at = set(slots[n_fail : n_fail + n_prod])
    versions: dict[str, list[int]] = {
        p: [rng.randint(1, 4), rng.randint(0, 20), 0] for p in PROJECTS
    }
    build_no = rng.randint(1000, 5000)
    red: dict[tuple[str, str], bool] = {}
    resolved = 0
    for i, (ts, project) in enumerate(zip(times, projects, strict=True)):
        build_no += 1
        if i in prod_at or (i not in fail_at and rng.random() < 0.12):
            v = versions[project]
            v[2] += 1
            env = "production" if i in prod_at else rng.choice(("staging", "staging", "dev"))
            rec: dict[str, Any] = {
                "timestamp": None,
                "type": "deployment",
                "service": project,
                "version": f"v{v[0]}.{v[1]}.{v[2]}",
                "environment": env,
                "deployer": rng.choice(authors + list(DEPLOY_BOTS)),
                "release_notes": rng.choice(RELEASE_NOTES),
            }
            expected["deployment"] += 1
            if env == "production":
                incidents.append(
                    Incident(
                        "deployment",
                        FAMILY,
                        ts,
                        {"service": project},
                        f"production {rec['version']}",
                    )
                )
        else:
            branch = rng.choice(
                (
                    "main",
                    "main",
                    "main",
                    "develop",
                    f"feature/{rng.choice(BRANCH_FEATURES)}",
                    f"release/2026.{rng.randint(1, 3):02d}",
                )
            )
            status = "failure" if i in fail_at else "success"
            commit = f"{rng.getrandbits(160):040x}"
            rec = {
                "timestamp": None,
                "type": "pipeline",
                "status": status,
                "project": project,
                "branch": branch,
                "commit": commit,
                "author": rng.choice(authors),
                "duration": round(rng.lognormvariate(5.5, 0.6), 1),
                "build_url": f"https://ci.example.com/{project}/-/pipelines/{build_no}",
                "description": (
                    rng.choice(FAIL_REASONS)
                    if status == "failure"
                    else f"Pipeline #{build_no} passed on {branch}"
                ),
            }
            was_red = red.get((project, branch), False)
            red[(project, branch)] = status == "failure"
            if status == "failure" and not was_red:
                expected["pipeline_failed"] += 1
                incidents.append(
                    Incident(
                        "pipeline_failed",
                        FAMILY,
                        ts,
                        {"project": project, "branch": branch},
                        rec["description"],
                    )
                )
            elif status == "success" and was_red:
                resolved += 1
        s.emit(ts, rec)
    return FamilyTraffic(s, expected, incidents, {"pipeline_failed": resolved})

"""Detectors describe themselves: where their state lives (``colocate``), whom they read
(``after``), which records can matter to them (``prefilter``); the package finds them without
a list, and adding one is adding its module."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

import streamproc
from streamproc.commands.check_config import check, render
from streamproc.config import parse_config_text
from streamproc.contracts import get_contract
from streamproc.decode import RecordDecoder
from streamproc.detectors import REGISTRY, UNDECLARED, Detector, build_engine, register
from streamproc.detectors.base import run_order
from streamproc.detectors.testing import T0, Harness
from streamproc.errors import ConfigError
from streamproc.events import Event
from streamproc.pipeline.repartition import plan
from streamproc.traffic import generate

BUILT_INS = {
    kind: cls
    for kind, cls in REGISTRY.items()
    if cls.__module__.startswith("streamproc.detectors.")
}


def test_the_package_finds_every_built_in_detector_module_without_a_list() -> None:
    modules = {
        p.stem for p in Path(streamproc.__file__).parent.joinpath("detectors").glob("*.py")
    } - {"__init__", "base", "columns", "engine", "factory", "merge", "testing"}
    modules = {m for m in modules if not m.startswith("_")}
    assert {cls.__module__.rsplit(".", 1)[1] for cls in BUILT_INS.values()} == modules


@pytest.mark.parametrize("kind", sorted(BUILT_INS))
def test_every_built_in_declares_the_fields_that_co_locate_its_state(kind: str) -> None:
    cls = BUILT_INS[kind]
    assert cls.colocate is not UNDECLARED, f"{kind} must declare colocate"
    if cls.colocate is not None:
        fields = get_contract(cls.family).fields
        assert cls.colocate and set(cls.colocate) <= set(fields)
    for peer in cls.after:
        assert peer in BUILT_INS and BUILT_INS[peer].family == cls.family


def test_a_detector_that_reads_another_runs_after_it_whatever_order_it_was_given() -> None:
    h = Harness("compromise_suspected", "brute_force")
    assert [d.kind for d in h.engine.detectors] == ["brute_force", "compromise_suspected"]
    events = [
        h.event(T0 + i, username="al", ip_address="192.0.2.1", success=False) for i in range(5)
    ]
    events.append(h.event(T0 + 30, username="al", ip_address="192.0.2.1", success=True))
    # one batch: brute_force has judged the failures before compromise_suspected sees the
    # success
    assert [a.kind for a in h.feed(events)] == ["brute_force", "compromise_suspected"]


class _Waits(Detector):
    family = "auth-logs"
    colocate = None

    def process(self, events: list[Event]) -> list[Any]:
        return []


def test_detectors_that_wait_for_each_other_are_a_config_error() -> None:
    a = type("A", (_Waits,), {"kind": "a", "after": ("b",)})()
    b = type("B", (_Waits,), {"kind": "b", "after": ("a",)})()
    with pytest.raises(ConfigError, match="a -> b -> a"):
        run_order([a, b])


def test_after_naming_a_detector_the_engine_does_not_run_is_ignored() -> None:
    lone = type("Lone", (_Waits,), {"kind": "lone", "after": ("brute_force",)})()
    assert run_order([lone]) == [lone]


# -- prefilters: what they let through is all a detector needs --------------------------------

FAMILY_SCENARIO = {
    "auth-logs": "auth",
    "api-access-logs": "api",
    "host-metrics": "hosts",
    "cicd-events": "cicd",
    "support-tickets": "tickets",
    "business-metrics": "business",
}


def _events(family: str, n: int, seed: int) -> list[Event]:
    traffic = generate(FAMILY_SCENARIO[family], n, seed=seed)
    decoder = RecordDecoder(get_contract(family))
    out = []
    for i, rec in enumerate(traffic.records[family]):
        ev = decoder.decode(orjson.dumps(rec), family, i % 2, i)
        assert isinstance(ev, Event)
        out.append(ev)
    return out


def _prefiltered(detector: Detector) -> None:
    """Give the detector only the records its prefilter passes, as a batch engine would."""
    process = detector.process

    def only_candidates(events: list[Event]) -> list[Any]:
        keep = detector.prefilter()
        return process(events if keep is None else [ev for ev in events if keep(ev.data)])

    detector.process = only_candidates  # type: ignore[method-assign]


def _alerts(engine: Any, events: list[Event]) -> list[tuple[Any, ...]]:
    out = []
    for i in range(0, len(events), 500):
        alerts, rejected = engine.process(events[i : i + 500])
        assert not rejected
        out.extend(alerts)
    out.extend(engine.finish())
    return [(a.kind, a.status, a.fingerprint, a.event_time, a.severity) for a in out]


@pytest.mark.parametrize("family", sorted(FAMILY_SCENARIO))
def test_a_detector_given_only_what_its_prefilter_passes_raises_the_same_alerts(
    family: str,
) -> None:
    config = parse_config_text("")
    binding = next(b for b in config.bindings if b.family == family)
    events = _events(family, 12_000, seed=3)
    want = _alerts(build_engine(config, binding), events)
    engine = build_engine(config, binding)
    for detector in engine.detectors:
        _prefiltered(detector)
    assert want, f"the {family} stream raises alerts"
    assert _alerts(engine, events) == want


def test_prefilters_of_the_auth_detectors_say_what_they_count() -> None:
    h = Harness("brute_force", "compromise_suspected", "unusual_login", "password_spray")
    by_kind = {d.kind: d.prefilter() for d in h.engine.detectors}
    failure, success = {"success": False}, {"success": True}
    assert by_kind["brute_force"](failure) and not by_kind["brute_force"](success)
    assert by_kind["password_spray"](failure) and not by_kind["password_spray"](success)
    assert by_kind["compromise_suspected"](success)
    assert by_kind["unusual_login"](success) and not by_kind["unusual_login"](failure)


def test_compromise_suspected_without_brute_force_sees_every_record() -> None:
    assert Harness("compromise_suspected").detector.prefilter() is None


# -- co-location: declared by the detector, assumed (and said) for one that does not ----------

UNDECLARED_MODULE = """
from streamproc.detectors import Detector


class FailureStreak(Detector):
    kind = "failure_streak"
    family = "auth-logs"

    def process(self, events):
        return []
"""


@pytest.fixture()
def undeclared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "streak_detectors.py").write_text(UNDECLARED_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "c.yaml"
    path.write_text(
        "kafka: {bootstrap_servers: '127.0.0.1:1'}\n"
        "topics:\n"
        "  - topic: logins\n"
        "    family: auth-logs\n"
        "    keyed_by: ip_address\n"
        "    detectors:\n"
        "      failure_streak: {class: 'streak_detectors:FailureStreak'}\n"
    )
    yield path
    sys.modules.pop("streak_detectors", None)


def test_a_detector_without_colocate_is_taken_to_key_its_state_by_the_family_key(
    undeclared: Path,
) -> None:
    from streamproc.config import load_config

    config = load_config(undeclared)
    _, remote = plan(config, config.bindings[0])
    assert "failure_streak" in remote["username"]  # auth-logs' contract key


def test_check_config_says_what_it_assumed_for_a_detector_without_colocate(
    undeclared: Path,
) -> None:
    out = io.StringIO()
    render(check(str(undeclared)), out)
    assert (
        "failure_streak declares no colocate: assumed its state is keyed by username "
        "(the family key)"
    ) in out.getvalue()
    assert "brute_force declares no colocate" not in out.getvalue()


def test_a_custom_detector_may_declare_colocate_like_a_built_in() -> None:
    @register
    class PerAddress(_Waits):
        kind = "per_address_test"
        colocate = ("ip_address",)

    try:
        config = parse_config_text(
            "topics: [{topic: a, family: auth-logs, keyed_by: username,"
            " detectors: {per_address_test: {}}}]"
        )
        _, remote = plan(config, config.bindings[0])
        assert "per_address_test" in remote["ip_address"]
    finally:
        REGISTRY.pop("per_address_test", None)


# -- adding a built-in detector is adding its module -------------------------------------------

NEW_MODULE = '''
"""night_login: a successful login between 01:00 and 05:00 UTC (one per user and night)."""

from streamproc.detectors._common import succeeded
from streamproc.detectors.base import Detector, register


@register
class NightLogin(Detector):
    kind = "night_login"
    family = "auth-logs"
    severity = "low"
    defaults = {"from_hour": 1, "to_hour": 5}
    colocate = ("username",)

    def prefilter(self):
        return succeeded

    def process(self, events):
        alerts = []
        for ev in events:
            hour = int(ev.ts % 86400 // 3600)
            if ev.data["success"] and self.params["from_hour"] <= hour < self.params["to_hour"]:
                user = ev.data["username"]
                alerts.append(self.make_alert(key={"username": user}, incident=ev.ts // 86400,
                                              event_time=ev.ts, title=f"{user} at night"))
        return alerts
'''

PROBE = """
import io, sys, orjson
from streamproc.commands.check_config import check, render
from streamproc.config import load_config
from streamproc.detectors import REGISTRY
from streamproc.commands.replay import ReplayInput, replay_records

config = load_config(sys.argv[1])
assert "night_login" in REGISTRY, sorted(REGISTRY)
lines = [orjson.dumps({"timestamp": ts, "username": "ann", "ip_address": "192.0.2.1",
                       "success": True}) for ts in (%(t0)r + 2 * 3600, %(t0)r + 12 * 3600)]
result = replay_records(config, [ReplayInput("logins", lines=lines)])
print("fired", [(a.kind, a.event_time) for a in result.alerts if a.kind == "night_login"])
out = io.StringIO()
render(check(sys.argv[1]), out)
print(out.getvalue())
"""


def test_a_new_detector_module_is_all_it_takes_to_add_a_built_in(tmp_path: Path) -> None:
    """A copy of the package with one more module in detectors/, and nothing else changed:
    the detector is registered, configured, judged in replay, and re-keyed by the field it
    declares."""
    package = Path(streamproc.__file__).parent
    shutil.copytree(package, tmp_path / "streamproc", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "streamproc" / "detectors" / "night_login.py").write_text(NEW_MODULE)
    config = tmp_path / "c.yaml"
    config.write_text(
        "kafka: {bootstrap_servers: '127.0.0.1:1'}\n"
        "topics:\n"
        "  - {topic: logins, family: auth-logs, keyed_by: ip_address,\n"
        "     detectors: {night_login: {to_hour: 4}}}\n"
    )
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE % {"t0": T0})
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    run = subprocess.run(
        [sys.executable, str(probe), str(config)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert f"fired [('night_login', {T0 + 2 * 3600!r})]" in run.stdout
    assert "night_login" in run.stdout.split("re-keyed:")[1].split("via")[0]
    assert "logins.username" in run.stdout
    assert "declares no colocate" not in run.stdout

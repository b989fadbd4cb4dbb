"""The docs name only what exists: every metric they mention is registered, every metric
registered is set somewhere, every repository path they cite is there, and so is every test
file that the code, the tests and the project's configuration point readers to."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from streamproc.ops.metrics import Metrics
from tests.paths import REPO

ROOT = REPO
# README, CONTRIBUTING, CHANGELOG and whatever else sits at the top
DOCS = sorted(
    [
        *ROOT.glob("*.md"),
        *(ROOT / "docs").glob("*.md"),
        *(ROOT / "bench").glob("*.md"),
        ROOT / "topics" / "README.md",
    ]
)
# the folders of this repository a doc may point into
TOP = {p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")} | {".ci"}
_SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created", "_info")


def _registered() -> dict[str, str]:
    """Registered metric family name -> the Metrics attribute that holds it."""
    metrics = Metrics(process_metrics=False)
    names: dict[str, str] = {}
    for attr, value in vars(metrics).items():
        name = getattr(value, "_name", None)
        if isinstance(name, str) and name.startswith("streamproc_"):
            names[name] = attr
    return names


def _family(name: str) -> str:
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _collected() -> set[str]:
    """Every metric family a scrape returns, those read at scrape time from a watched
    table included (an empty table stands for the active-alerts one)."""

    class Table:
        published = failed_sends = dropped = unencodable = pending = 0

    metrics = Metrics(process_metrics=False)
    metrics.watch_active_publishing(Table())
    return {family.name for family in metrics.registry.collect()}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_metric_a_doc_names_is_registered(doc: Path) -> None:
    registered = {**dict.fromkeys(_collected(), ""), **_registered()}
    named = set(re.findall(r"\bstreamproc_[a-z_]+[a-z]", doc.read_text()))
    unknown = sorted(n for n in named if n not in registered and _family(n) not in registered)
    assert not unknown, f"{doc.name} names metrics nothing registers: {unknown}"


def test_every_registered_metric_is_set_by_the_code() -> None:
    code = "\n".join(
        p.read_text() for p in (ROOT / "streamproc").rglob("*.py") if p.name != "metrics.py"
    )
    metrics_py = (ROOT / "streamproc" / "ops" / "metrics.py").read_text()
    unused = []
    methods = re.split(r"\n    def ", metrics_py)
    for name, attr in _registered().items():
        # set from another module (metrics.dead_letters.labels(...)), or by a Metrics
        # method (its constructor included) that the code calls
        if re.search(rf"\.{attr}\b", code):
            continue
        setters = [
            m.split("(", 1)[0]
            for m in methods[1:]
            if re.search(rf"self\.{attr}\.(?:inc|dec|set|info|observe|labels)\(", m)
        ]
        callers = code + metrics_py  # (``routes`` calls ``exposition``)
        if "__init__" not in setters and not any(re.search(rf"\.{m}\b", callers) for m in setters):
            unused.append(name)
    assert not unused, f"registered but never set: {unused}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_repository_path_a_doc_cites_exists(doc: Path) -> None:
    cited = set(re.findall(r"`([\w.\-/*]+/[\w.\-*]+)`", doc.read_text()))
    cited |= set(re.findall(r"\]\(([\w.\-/]+)\)", doc.read_text()))
    missing = []
    for path in cited:
        path = path.split("#")[0].rstrip("/")
        head = path.split("/")[0]
        if head not in TOP or "<" in path:
            continue
        if not (_exists(ROOT, path) or _exists(doc.parent, path)):
            missing.append(path)
    assert not missing, f"{doc.name} cites paths that do not exist: {sorted(missing)}"


def _exists(base: Path, path: str) -> bool:
    """A path, or a pattern (``tests/faults/test_hostile_*.py``) that matches something."""
    return any(base.glob(path)) if "*" in path else (base / path).exists()


# comments and docstrings that send a reader to a test file ("tests/unit/test_frames.py checks
# ..."), and the configuration that runs them
POINTERS = sorted(
    [
        *(ROOT / "streamproc").rglob("*.py"),
        *(ROOT / "tests").rglob("*.py"),
        *(ROOT / "bench").rglob("*.py"),
        ROOT / "pyproject.toml",
        ROOT / ".pre-commit-config.yaml",
        ROOT / ".ci" / "run",
    ]
)


def test_every_test_file_the_code_and_configuration_name_exists() -> None:
    missing = []
    for source in POINTERS:
        for path in set(re.findall(r"\btests/[\w/*\-]+\.py\b", source.read_text())):
            if "<" not in path and not _exists(ROOT, path):
                missing.append(f"{source.relative_to(ROOT)}: {path}")
    assert not missing, f"test files named but not there: {sorted(missing)}"

"""What a wheel ships is what the source tree holds: every package folder is configured in
pyproject.toml, and the data the code reads at run time is matched by package-data.

The editable install the tests run under imports straight from the tree, so a package left out
of [tool.setuptools] passes every other test and only fails for users of a real install. These
tests read the configuration the way setuptools does (no wheel is built: that takes seconds).
"""

from __future__ import annotations

import fnmatch
import warnings
from pathlib import Path

import pytest
import yaml

from tests.paths import REPO

ROOT = REPO


def _setuptools_config() -> dict:
    from setuptools.config.pyprojecttoml import read_configuration

    with warnings.catch_warnings():  # deprecation notes about unrelated fields
        warnings.simplefilter("ignore")
        config = read_configuration(ROOT / "pyproject.toml")
    return config["tool"]["setuptools"]


def _package_dirs(config: dict) -> dict[str, Path]:
    """Top-level import name -> its folder: ``streamproc`` itself and every package-dir
    mapping (``streamproc.topics`` -> topics/, ``streamproc.bench`` -> bench/)."""
    dirs = {"streamproc": ROOT / "streamproc"}
    for name, folder in (config.get("package-dir") or {}).items():
        if name:
            dirs[name] = ROOT / folder
    return dirs


def _packages_on_disk(config: dict) -> set[str]:
    found = set()
    for name, folder in _package_dirs(config).items():
        for init in folder.rglob("__init__.py"):
            parts = init.parent.relative_to(folder).parts
            if "__pycache__" not in parts:
                found.add(".".join((name, *parts)))
    return found


def test_every_package_folder_is_in_what_setuptools_packages() -> None:
    config = _setuptools_config()
    missing = sorted(_packages_on_disk(config) - set(config["packages"]))
    assert not missing, (
        f"pyproject.toml [tool.setuptools] packages leaves out {missing}: a wheel would not "
        f"contain them and `import` fails outside the source tree; add them to the list"
    )


def test_every_configured_package_is_a_folder_with_an_init() -> None:
    config = _setuptools_config()
    dirs = _package_dirs(config)
    stale = []
    for package in config["packages"]:
        top = max(
            (name for name in dirs if package == name or package.startswith(name + ".")),
            key=len,
            default=None,
        )
        assert top is not None, f"{package} is outside streamproc and every package-dir mapping"
        folder = dirs[top].joinpath(*package[len(top) :].split(".")[1:])
        if not (folder / "__init__.py").is_file():
            stale.append(package)
    assert not stale, f"pyproject.toml packages names folders that are not packages: {stale}"


def _contract_files() -> list[str]:
    """The files under topics/ that streamproc.contracts reads through importlib.resources:
    each contract and the sample stream it names."""
    names = []
    for contract in sorted((ROOT / "topics").glob("*.yaml")):
        names.append(contract.name)
        sample = yaml.safe_load(contract.read_text()).get("sample")
        if sample:
            names.append(sample)
    return names


@pytest.mark.parametrize("name", _contract_files())
def test_every_builtin_contract_and_sample_is_package_data(name: str) -> None:
    globs = _setuptools_config().get("package-data", {}).get("streamproc.topics", [])
    assert (ROOT / "topics" / name).is_file(), f"topics/{name} is named but missing"
    assert any(fnmatch.fnmatch(name, g) for g in globs), (
        f"topics/{name} is not matched by package-data for streamproc.topics ({globs}): "
        f"an installed streamproc would not find it"
    )

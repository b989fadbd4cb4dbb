"""``streamproc rules check PATH...``: which rules load, and which do not and why.

Each file is read as a Sigma rule file when one of its documents has ``detection:`` or
``correlation:``, else as a rule file (docs/rules.md). Exit status 0 when everything loads,
1 when a rule file has an error or a Sigma rule is skipped (each listed with its file, rule
and what), 2 for a path that does not exist.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

import yaml

from ..config import load_config
from ..errors import ConfigError, ConfigErrors
from . import RuleSet, load_rules
from .files import rule_files


def is_sigma(path: Path) -> bool:
    try:
        docs = list(yaml.safe_load_all(path.read_text()))
    except (yaml.YAMLError, OSError, UnicodeDecodeError):
        return False
    return any(isinstance(d, dict) and ("detection" in d or "correlation" in d) for d in docs)


def check(paths: list[str], config_path: str | None) -> tuple[RuleSet, list[ConfigError]]:
    config = load_config(config_path)
    files = rule_files(paths)
    sigma = [str(f) for f in files if is_sigma(f)]
    plain = [str(f) for f in files if str(f) not in sigma]
    doc: dict[str, object] = {}
    if plain:
        doc["rules"] = plain
    if sigma:
        own = config.raw.get("sigma") if isinstance(config.raw, dict) else None
        doc["sigma"] = {
            "rules": sigma,
            "logsources": own.get("logsources") or [] if isinstance(own, dict) else [],
        }
    errors: list[ConfigError] = []
    rules = load_rules(doc, config.file, set(config.contracts), errors)
    return rules, errors


def report(rules: RuleSet, errors: list[ConfigError], out: TextIO) -> int:
    for spec in rules.specs:
        extra = "" if spec.generate else "  (read by a correlation; raises nothing itself)"
        key = f" key={','.join(spec.key)}" if spec.key else ""
        out.write(f"ok       {spec.kind}  {spec.family}  {spec.type}{key}  {spec.origin}{extra}\n")
    for note in rules.notes:
        out.write(f"note     {note}\n")
    flat: list[ConfigError] = []
    for error in errors:
        flat.extend(error.errors if isinstance(error, ConfigErrors) else [error])
    for error in flat:
        out.write(f"error    {error}\n")
    for skipped in rules.skipped:
        out.write(f"skipped  {skipped}\n")
    out.write(f"{len(rules.specs)} loaded, {len(flat)} with errors, {len(rules.skipped)} skipped\n")
    return 1 if flat or rules.skipped else 0


def main(args: argparse.Namespace) -> int:
    for value in args.paths:
        if not Path(value).exists():
            print(f"streamproc rules check: no such file or folder {value!r}", file=sys.stderr)
            return 2
    rules, errors = check(list(args.paths), args.config)
    return report(rules, errors, sys.stdout)

"""Render a ``results.json`` of ``streamproc bench`` as Markdown (the tables in RESULTS.md).

python -m streamproc.bench.report bench-out/results.json
"""

from __future__ import annotations

import json
import sys
from typing import Any

from .common import fmt_value


def _target(r: dict[str, Any]) -> str:
    if not r.get("target"):
        return "-"
    met = r.get("target_met")
    return f"{r['target']}: **{'met' if met else 'MISSED' if met is False else '?'}**"


def _verified(r: dict[str, Any]) -> str:
    v = r.get("verified")
    if v is None:
        return "-"
    if not v.get("ok"):
        return f"**WRONG** {v.get('mismatches') or v}"
    if v.get("checked"):
        total = sum(c["expected"] for c in v["checked"].values())
        return f"ok: {total:,} alerts of {len(v['checked'])} kinds"
    return "ok"


def render(results: dict[str, Any]) -> str:
    out = [
        f"Command: `{results['command']}`",
        "",
        f"Machine: {results['machine_line']}; load average at end "
        f"{results['machine'].get('loadavg_end', ['?'])[0]}.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items() if v),
        "",
        f"Started {results['started_utc']}, took {results['seconds'] / 60:.1f} min.",
        "",
        "| scenario | measure | median | spread | baseline (same run) | baseline median | "
        "ratio | target | verified |",
        "|---|---|---:|---:|---|---:|---:|---|---|",
    ]
    for r in results["results"]:
        if r.get("skipped") or r.get("error"):
            note = f"skipped: {r['skipped']}" if r.get("skipped") else f"FAILED: {r['error']}"
            out.append(f"| {r['scenario']} | {r['name']} | - | - | - | - | - | - | {note} |")
            continue
        unit = r["unit"]
        spread = f"{r['spread_pct']:.0f}%" if r.get("spread_pct") is not None else "-"
        ratio = f"{r['ratio']:.2f}x" if r.get("ratio") is not None else "-"
        out.append(
            f"| {r['scenario']} | {r['name']} | {fmt_value(r['median'], unit)} {unit} | "
            f"{spread} | {r.get('baseline_name') or '-'} | "
            f"{fmt_value(r.get('baseline_median'), unit)} | {ratio} | {_target(r)} | "
            f"{_verified(r)} |"
        )
    out += ["", "Every run (streamproc / baseline):", ""]
    for r in results["results"]:
        if r.get("runs"):
            runs = ", ".join(fmt_value(x, r["unit"]) for x in r["runs"])
            base = (
                " / " + ", ".join(fmt_value(x, r["unit"]) for x in r["baseline_runs"])
                if r.get("baseline_runs")
                else ""
            )
            out.append(f"- {r['scenario']}, {r['name']}: {runs}{base}")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = args[0] if args else "bench-out/results.json"
    with open(path) as fh:
        print(render(json.load(fh)), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``streamproc bench [SCENARIO...] [--events N] [--runs R] [--out DIR]``.

Runs the scenarios (default: all), each ``R`` times with its baseline measured in the same
invocation; shows a progress bar, prints a table, writes ``DIR/results.json`` (machine,
versions, parameters, every run) and ``DIR/results.png`` (one panel per question the run
answers: throughput, latency, state, workers, peers). Exit status: 0 when every scenario
ran and gave the right answer (targets missed are reported, not failures), 1 when a scenario
failed or its alerts were wrong (a fast wrong answer is a failure, not a result).

Scenarios live one per module (detect.py, mapped.py, state.py, notify.py, mqtt.py, kafka.py,
workers.py, peers.py, startup.py); each exposes ``run(ctx) -> list[Row]`` and
``STEPS_PER_RUN`` for the progress bar.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from typing import Any

from .common import Context, Row, fmt_value, machine_info, machine_line, versions

SCENARIOS = (
    "detect",
    "mapped",
    "state",
    "notify",
    "mqtt",
    "kafka",
    "workers",
    "peers",
    "unkeyed",
    "startup",
    "ingest",
)


def _module(name: str) -> Any:
    return importlib.import_module(f"streamproc.bench.{name}")


def run_scenarios(names: list[str], ctx: Context) -> list[Row]:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    console = Console(stderr=True)
    rows: list[Row] = []
    modules = {name: _module(name) for name in names}
    total = sum(
        getattr(m, "STEPS_PER_RUN", 1) * ctx.runs + getattr(m, "EXTRA_STEPS", 0)
        for m in modules.values()
    )
    with Progress(
        TextColumn("[bold]{task.fields[scenario]:<8}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("", total=total, scenario="")

        plain = not console.is_terminal  # CI logs and files: one line per step instead

        def step(desc: str) -> None:
            progress.update(task, advance=1, description=desc)
            if plain:
                console.print(f"[{time.strftime('%H:%M:%S')}] {desc}", highlight=False)

        def log(msg: str) -> None:
            progress.update(task, description=msg)
            if plain:
                console.print(f"[{time.strftime('%H:%M:%S')}] {msg}", highlight=False)

        ctx.step = step
        ctx.log = log
        for name, module in modules.items():
            progress.update(task, scenario=name, description="starting")
            started = time.perf_counter()
            try:
                out = module.run(ctx)
            except Exception as exc:  # noqa: BLE001 - one scenario's failure is a result
                out = [
                    Row(
                        name,
                        "scenario failed",
                        "-",
                        error=f"{type(exc).__name__}: {exc}",
                        extra={"traceback": traceback.format_exc()},
                    )
                ]
            for row in out:
                row.extra.setdefault("scenario_seconds", round(time.perf_counter() - started, 2))
            rows.extend(out)
    return rows


def print_table(rows: list[Row], info: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"streamproc bench - {machine_line(info)}", title_justify="left")
    for col, justify in (
        ("scenario", "left"),
        ("measure", "left"),
        ("median", "right"),
        ("spread", "right"),
        ("baseline", "left"),
        ("baseline median", "right"),
        ("ratio", "right"),
        ("target", "left"),
        ("verified", "left"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        if r.skipped or r.error:
            table.add_row(
                r.scenario,
                r.name,
                "-",
                "-",
                "-",
                "-",
                "-",
                "-",
                f"[yellow]skipped: {r.skipped}" if r.skipped else f"[red]FAILED: {r.error}",
            )
            continue
        met = r.target_met
        target = (
            "-"
            if not r.target
            else (
                f"[green]{r.target} met"
                if met
                else f"[red]{r.target} MISSED"
                if met is False
                else r.target
            )
        )
        if r.verified is None:
            verified = "-"
        elif r.verified.get("ok"):
            checked = r.verified.get("checked")
            verified = f"[green]ok ({len(checked)} kinds)" if checked else "[green]ok"
        else:
            verified = f"[red]WRONG {r.verified.get('mismatches') or r.verified}"
        table.add_row(
            r.scenario,
            r.name,
            f"{fmt_value(r.median, r.unit)} {r.unit}",
            f"{r.spread:.0f}%" if r.spread is not None else "-",
            r.baseline_name or "-",
            fmt_value(r.baseline_median, r.unit),
            f"{r.ratio:.2f}x" if r.ratio is not None else "-",
            target,
            verified,
        )
    console = Console()
    if not console.is_terminal:  # files and CI logs: don't squeeze the table into 80 columns
        console = Console(width=220)
    console.print(table)


def write_chart(rows: list[Row], path: str, info: dict[str, Any]) -> str:
    """The figure of the run at ``path``: one panel per question (see chart.py)."""
    from .chart import write_charts

    return write_charts([r.to_dict() for r in rows], path, info)[0]


def main(args: Any) -> int:
    names = list(args.scenarios or SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(
            f"streamproc bench: unknown scenario {', '.join(unknown)}; choose from "
            f"{', '.join(SCENARIOS)}",
            file=sys.stderr,
        )
        return 2
    if args.runs < 1 or (args.events is not None and args.events < 1):
        print("streamproc bench: --runs and --events must be positive", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    info = machine_info()
    ctx = Context(
        events=args.events,
        runs=args.runs,
        out=args.out,
        seed=getattr(args, "seed", 1) or 1,
        sigma=getattr(args, "sigma", None),
    )
    started = time.time()
    rows = run_scenarios(names, ctx)
    info["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    results = {
        "command": "streamproc bench "
        + " ".join(sys.argv[2:] if sys.argv[1:2] == ["bench"] else sys.argv[1:]),
        "machine": info,
        "machine_line": machine_line(info),
        "versions": versions(),
        "params": {
            "scenarios": names,
            "events": args.events,
            "runs": args.runs,
            "seed": ctx.seed,
            **({"sigma": ctx.sigma} if ctx.sigma else {}),
        },
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 1),
        "results": [r.to_dict() for r in rows],
    }
    path = os.path.join(args.out, "results.json")
    with open(path, "w") as fh:
        json.dump(results, fh, indent=2, default=str)
    chart = write_chart(rows, os.path.join(args.out, "results.png"), info)
    print_table(rows, info)
    print(f"wrote {path} and {chart}", file=sys.stderr)
    return 0 if all(r.ok for r in rows) else 1

"""Figures of a ``streamproc bench`` run, one per question, each about 1000 px wide.

    python -m streamproc.bench.chart bench-out/results.json   # re-render next to the json

``PREFIX.png`` is the overview (every row, its median, baseline, ratio and target met or
missed); beside it ``PREFIX-throughput.png`` (streamproc against its same-run baseline, row by
row, ratio printed, target line where the row has one), ``PREFIX-latency.png`` (alert latency
p50/p99 per kind and notify delivery latency against their targets), ``PREFIX-state.png``
(bytes per tracked key per detector against the target) and ``PREFIX-workers.png`` (events/s
against worker count with the ideal linear line). A figure whose scenarios were not run is
left out; a row that failed or was skipped says so instead of a bar.
"""

from __future__ import annotations

import json
import os
import re
import sys
import textwrap
from typing import Any

from .common import fmt_value

WIDTH_IN = 10.0  # at DPI this is 1000 px: the width RESULTS.md shows
DPI = 100
OURS = "#1f77b4"
BASE = "#a0a0a0"
MET = "#2ca02c"
MISSED = "#d62728"
NEUTRAL = "#555555"


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _measured(r: dict[str, Any]) -> bool:
    return bool(r.get("runs")) and not r.get("error") and not r.get("skipped")


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "\u2026"


def _wrap(text: str, n: int) -> str:
    return "\n".join(textwrap.wrap(text, n)) or text


def _status_color(met: bool | None) -> str:
    return MET if met else MISSED if met is False else NEUTRAL


def _status_word(r: dict[str, Any]) -> str:
    if not r.get("target"):
        return ""
    met = r.get("target_met")
    return f"target {r['target']}: " + ("met" if met else "MISSED" if met is False else "?")


_CLAUSE = re.compile(r"([<>]=?)\s*([\d][\d,]*(?:\.\d+)?)\s*(%|x)?")


def target_lines(r: dict[str, Any]) -> list[tuple[float, str]]:
    """The target of a row as values on its own axis: ``>= 300,000 events/s`` is 300000,
    ``>= 60% of raw`` and ``>= 0.65x raw`` are fractions of the baseline median."""
    text = r.get("target") or ""
    out = []
    for clause in text.split(" and "):
        m = _CLAUSE.search(clause)
        if not m:
            continue
        value = float(m.group(2).replace(",", ""))
        if m.group(3) in ("%", "x"):
            base = r.get("baseline_median")
            if not base:
                continue
            value = base * (value / 100.0 if m.group(3) == "%" else value)
        out.append((value, clause.strip()))
    return out


def _note(ax: Any, text: str, color: str = NEUTRAL) -> None:
    ax.text(0.01, 0.5, text, transform=ax.transAxes, va="center", ha="left", fontsize=9,
            color=color, style="italic")
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)


def _footer(fig: Any, info: dict[str, Any]) -> None:
    fig.supxlabel(f"{info.get('time_utc', '?')}, {info.get('cores_usable', '?')} cores; "
                  "median of runs, whiskers min-max", x=0.99, ha="right", fontsize=7,
                  color=NEUTRAL)


def _ratio(ratio: float) -> str:
    if ratio >= 100:
        return f"{ratio:,.0f}x"
    return f"{ratio:.2f}x" if ratio >= 0.1 else f"{ratio:.2g}x"


def _save(fig: Any, path: str) -> str:
    fig.savefig(path, dpi=DPI)
    _plt().close(fig)
    return path


# -- throughput and other same-run comparisons ------------------------------------------------

def _baseline_rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in results if r.get("baseline_name")
            or (r.get("skipped") or r.get("error")) and r.get("scenario") != "state"]


def throughput_figure(results: list[dict[str, Any]], path: str, info: dict[str, Any]) -> str | None:
    rows = _baseline_rows(results)
    if not rows:
        return None
    plt = _plt()
    heights = [1.05 if _measured(r) and r.get("baseline_runs") else 0.55 for r in rows]
    fig, axes = plt.subplots(len(rows), 1, figsize=(WIDTH_IN, sum(heights) + 0.8),
                             squeeze=False, gridspec_kw={"height_ratios": heights},
                             layout="constrained")
    fig.suptitle("streamproc against its same-run baseline (bar pairs; ratio = streamproc / "
                 "baseline)", fontsize=11, x=0.01, ha="left")
    for ax, r in zip(axes[:, 0], rows, strict=True):
        title = f"{r['scenario']}: {_short(r['name'], 70)}"
        if not _measured(r) or not r.get("baseline_runs"):
            why = (f"FAILED: {r['error']}" if r.get("error") else
                   f"not run: {r['skipped']}" if r.get("skipped") else "no baseline measured")
            ax.set_title(title, fontsize=9, loc="left")
            _note(ax, _short(why, 120), MISSED if r.get("error") else NEUTRAL)
            continue
        _pair(ax, r, title)
    _footer(fig, info)
    return _save(fig, path)


def _pair(ax: Any, r: dict[str, Any], title: str) -> None:
    unit = r.get("unit", "")
    values = [r["median"], r["baseline_median"]]
    runs = [r["runs"], r["baseline_runs"]]
    err = [[v - min(x) for v, x in zip(values, runs, strict=True)],
           [max(x) - v for v, x in zip(values, runs, strict=True)]]
    ypos = [1, 0]
    colors = [OURS if r.get("ok", True) else MISSED, BASE]
    ax.barh(ypos, values, xerr=err, color=colors, height=0.7, capsize=3,
            error_kw={"elinewidth": 0.8, "ecolor": "#333333"})
    ax.set_yticks(ypos)
    ax.set_yticklabels(["streamproc", _short(r["baseline_name"], 30)], fontsize=8)
    top = max(max(x) for x in runs)
    lines = target_lines(r)
    for value, _label in lines:
        top = max(top, value)
    ax.set_xlim(0, top * 1.32)
    for y, v, x in zip(ypos, values, runs, strict=True):
        ax.text(max(x) + top * 0.015, y, f"{fmt_value(v, unit)} {unit}", va="center",
                fontsize=7.5)
    met = r.get("target_met")
    for value, _label in lines:
        ax.axvline(value, color=_status_color(met), linestyle="--", linewidth=1.2)
    ratio = r.get("ratio")
    if ratio is not None:
        ax.text(1.01, 0.55, _ratio(ratio), transform=ax.transAxes, ha="left",
                va="bottom", fontsize=12, fontweight="bold", color=_status_color(met))
        ax.text(1.01, 0.45, "higher is better" if r.get("higher_is_better", True)
                else "lower is better", transform=ax.transAxes, ha="left", va="top",
                fontsize=7, color=NEUTRAL)
    status = _status_word(r)
    ax.set_title(title + (f"   [{status}]" if status else ""), fontsize=9, loc="left",
                 color="black" if met is not False else MISSED)
    ax.tick_params(axis="x", labelsize=7)
    ax.xaxis.set_major_formatter(_si_formatter())
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _si_formatter() -> Any:
    from matplotlib.ticker import FuncFormatter

    def fmt(x: float, _pos: int) -> str:
        for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if abs(x) >= div:
                return f"{x / div:g}{suffix}"
        return f"{x:g}"

    return FuncFormatter(fmt)


# -- latency ---------------------------------------------------------------------------------

def _latency_rows(results: list[dict[str, Any]], scenario: str) -> list[dict[str, Any]]:
    return [r for r in results if r.get("scenario") == scenario and r.get("unit") == "ms"
            and "latency" in r.get("name", "")]


def latency_figure(results: list[dict[str, Any]], path: str, info: dict[str, Any]) -> str | None:
    kafka = _latency_rows(results, "kafka")
    notify = _latency_rows(results, "notify")
    if not kafka and not notify:
        return None
    plt = _plt()
    p99 = next((r for r in kafka if "p99" in r["name"]), None)
    by_kind = (p99 or {}).get("extra", {}).get("by_kind") or {}
    kafka_h = 0.9 + 0.32 * (len(by_kind) + 1) if kafka else 0.8
    notify_h = 1.3 if notify else 0.8
    fig, (ax_k, ax_n) = plt.subplots(2, 1, figsize=(WIDTH_IN, kafka_h + notify_h + 0.9),
                                     gridspec_kw={"height_ratios": [kafka_h, notify_h]},
                                     layout="constrained")
    fig.suptitle("Latency percentiles against their targets", fontsize=11, x=0.01, ha="left")
    if not kafka or not p99 or not _measured(p99):
        ax_k.set_title("kafka: alert latency", fontsize=9, loc="left")
        row = p99 or (kafka[0] if kafka else None)
        _note(ax_k, "not run" if row is None else
              _short(f"not measured: {row.get('skipped') or row.get('error')}", 120))
    else:
        p50 = next((r for r in kafka if "p50" in r["name"]), None)
        cats = [("all alerts", p50["median"] if p50 and _measured(p50) else None,
                 p99["median"], p99["extra"].get("alerts"))]
        for kind, v in sorted(by_kind.items()):
            cats.append((kind, v.get("p50_ms"), v.get("p99_ms"), v.get("alerts")))
        lines = target_lines(p99)
        rate = p99.get("extra", {}).get("rate")
        title = "kafka: alert latency at 50% of sustained rate" + (
            f" ({rate:,.0f} events/s)" if rate else "") + " per alert kind"
        _percentile_bars(ax_k, cats, lines, p99.get("target_met"), title,
                         _status_word(p99).replace("target", "p99 target"))
    if not notify:
        ax_n.set_title("notify: delivery latency", fontsize=9, loc="left")
        _note(ax_n, "not run")
    else:
        n50 = next((r for r in notify if "p50" in r["name"] and _measured(r)), None)
        n99 = next((r for r in notify if "p99" in r["name"] and _measured(r)), None)
        if n99 is None:
            ax_n.set_title("notify: delivery latency", fontsize=9, loc="left")
            _note(ax_n, "not measured")
        else:
            cats = [("5 channels x 20 ms", n50["median"] if n50 else None, n99["median"],
                     None)]
            _percentile_bars(ax_n, cats, target_lines(n99), n99.get("target_met"),
                             "notify: delivery latency, submit -> receiver",
                             _status_word(n99).replace("target", "p99 target")
                             or "no latency target")
    _footer(fig, info)
    return _save(fig, path)


def _percentile_bars(ax: Any, cats: list[tuple[str, float | None, float | None, Any]],
                     lines: list[tuple[float, str]], met: bool | None, title: str,
                     status: str) -> None:
    n = len(cats)
    ys = list(range(n - 1, -1, -1))
    h = 0.38
    p50 = [c[1] or 0.0 for c in cats]
    p99 = [c[2] or 0.0 for c in cats]
    ax.barh([y + h / 2 for y in ys], p50, height=h, color="#9ecae1", label="p50")
    ax.barh([y - h / 2 for y in ys], p99, height=h, color=OURS, label="p99")
    top = max([*p99, *p50, *(v for v, _ in lines), 1.0])
    ax.set_xlim(0, top * 1.18)
    for y, a, b in zip(ys, p50, p99, strict=True):
        ax.text(a + top * 0.01, y + h / 2, f"{a:,.0f}", va="center", fontsize=7)
        ax.text(b + top * 0.01, y - h / 2, f"{b:,.0f} ms", va="center", fontsize=7)
    ax.set_yticks(ys)
    ax.set_yticklabels([c[0] + (f" ({c[3]:,})" if c[3] else "") for c in cats], fontsize=8)
    for value, label in lines:
        ax.axvline(value, color=_status_color(met), linestyle="--", linewidth=1.4,
                   label=f"p99 target {label}")
    ax.set_xlabel("ms (alerts timed in brackets)" if any(c[3] for c in cats) else "ms",
                  fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(title + (f"   [{status}]" if status else ""), fontsize=9, loc="left",
                 color=MISSED if met is False else "black")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


# -- state -----------------------------------------------------------------------------------

def state_figure(results: list[dict[str, Any]], path: str, info: dict[str, Any]) -> str | None:
    rows = [r for r in results if r.get("scenario") == "state"
            and (r.get("unit") == "bytes/key" or r.get("skipped") or r.get("error"))]
    if not rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 1.3 + 0.38 * len(rows)), layout="constrained")
    ys = list(range(len(rows) - 1, -1, -1))
    labels, top, lines = [], 1.0, []
    for y, r in zip(ys, rows, strict=True):
        labels.append(r["name"].split()[0] if _measured(r) else _short(r["name"], 30))
        if not _measured(r):
            ax.text(0, y, "  " + _short(f"not run: {r.get('skipped') or r.get('error')}", 90),
                    va="center", fontsize=8, style="italic", color=NEUTRAL)
            continue
        v = r["median"]
        met = r.get("target_met")
        ax.barh(y, v, height=0.65, color=MISSED if met is False else OURS,
                xerr=[[v - min(r["runs"])], [max(r["runs"]) - v]], capsize=2,
                error_kw={"elinewidth": 0.8})
        ax.text(v + 4, y, f"{v:,.0f}", va="center", fontsize=8)
        top = max(top, max(r["runs"]))
        lines.extend(target_lines(r))
    for value, label in dict.fromkeys(lines):
        ax.axvline(value, color=MISSED, linestyle="--", linewidth=1.4)
        ax.text(value, 1.0, f"target {label} ", transform=ax.get_xaxis_transform(),
                ha="right", va="bottom", fontsize=8, color=MISSED)
        top = max(top, value)
    ax.set_xlim(0, top * 1.12)
    ax.set_yticks(ys)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xlabel("bytes per tracked key (heap, measured)", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    missed = [r for r in rows if r.get("target_met") is False]
    ax.set_title("State: bytes per tracked key, per detector" + (
        f"   [{len(missed)} over target]" if missed else "   [all within target]"
        if lines else ""), fontsize=11, loc="left")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    _footer(fig, info)
    return _save(fig, path)


# -- workers ---------------------------------------------------------------------------------

def workers_figure(results: list[dict[str, Any]], path: str, info: dict[str, Any]) -> str | None:
    rows = [r for r in results if r.get("scenario") == "workers"]
    if not rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 4.2), layout="constrained")
    points = []
    for r in rows:
        m = re.match(r"\s*(\d+) workers?\b", r.get("name", ""))
        if m and _measured(r):
            points.append((int(m.group(1)), r))
    points.sort(key=lambda p: p[0])
    extra = next((r["extra"] for r in rows if r.get("extra", {}).get("worker_counts")), {})
    ax.set_title("Workers: committed events/s against worker count"
                 + (f" ({extra['partitions']} partitions, {extra['cores']} cores)"
                    if extra.get("partitions") else ""), fontsize=11, loc="left")
    if not points:
        why = next((r.get("skipped") or r.get("error") for r in rows
                    if r.get("skipped") or r.get("error")), "no measured row")
        _note(ax, _short(f"not run: {why}", 120))
        return _save(fig, path)
    ks = [k for k, _ in points]
    med = [r["median"] for _, r in points]
    lo = [r["median"] - min(r["runs"]) for _, r in points]
    hi = [max(r["runs"]) - r["median"] for _, r in points]
    ax.errorbar(ks, med, yerr=[lo, hi], marker="o", color=OURS, capsize=4, linewidth=2,
                label="streamproc (median, min-max)")
    one = dict(points).get(1)
    if one is not None:
        ideal_k = list(range(1, max(ks) + 1))
        ax.plot(ideal_k, [one["median"] * k for k in ideal_k], linestyle="--", color=BASE,
                label="ideal: linear in workers")
    for k, v in zip(ks, med, strict=True):
        label = f"{v:,.0f}/s"
        if one is not None and k != 1:
            label += f"\n{v / one['median']:.2f}x of 1"
        ax.annotate(label, (k, v), textcoords="offset points", xytext=(8, -4), fontsize=8)
    cores = extra.get("cores") or info.get("cores_usable")
    if cores and max(ks) > cores:
        ax.axvline(cores, color=NEUTRAL, linestyle=":", linewidth=1, label=f"{cores} cores")
    ax.set_xticks(ks)
    ax.set_xlim(0.5, max(ks) + 0.5 + 0.1 * max(ks))
    ax.set_ylim(0, max([*(m + h for m, h in zip(med, hi, strict=True)),
                        *([one["median"] * max(ks)] if one is not None else [])]) * 1.15)
    ax.set_xlabel("workers", fontsize=9)
    ax.set_ylabel("events/s committed", fontsize=9)
    ax.yaxis.set_major_formatter(_si_formatter())
    ax.tick_params(labelsize=8)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    _footer(fig, info)
    return _save(fig, path)


# -- overview --------------------------------------------------------------------------------

def overview_figure(results: list[dict[str, Any]], path: str, info: dict[str, Any],
                    figures: list[str]) -> str:
    """Every row in one table: what was measured, the result, and the target met or missed."""
    plt = _plt()
    line_h = 0.2
    fig = plt.figure(figsize=(WIDTH_IN, 1.3 + line_h * (len(results) + 1)))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.axis("off")
    total = fig.get_figheight()

    def y(i: float) -> float:
        return 1 - (0.75 + line_h * i) / total

    ax.text(0.01, 1 - 0.3 / total, "streamproc bench: every measure at a glance",
            fontsize=12, fontweight="bold", va="center")
    ax.text(0.99, 1 - 0.3 / total, "green: target met, red: missed", fontsize=8,
            ha="right", va="center", color=NEUTRAL)
    cols = ((0.006, "scenario", "left"), (0.07, "measure", "left"),
            (0.47, "median", "right"), (0.565, "baseline", "right"),
            (0.575, "(same run)", "left"), (0.80, "ratio", "right"),
            (0.81, "target", "left"))
    for x, head, ha in cols:
        ax.text(x, y(0), head, fontsize=8, fontweight="bold", ha=ha, va="center")
    for i, r in enumerate(results, start=1):
        if i % 2:
            ax.axhspan(y(i) - line_h / 2 / total, y(i) + line_h / 2 / total,
                       color="#f2f2f2", zorder=0)
        unit = r.get("unit", "")
        if r.get("error") or r.get("skipped"):
            cells = [r["scenario"], _short(r["name"], 46), "", "", _short(
                f"FAILED: {r['error']}" if r.get("error") else f"not run: {r['skipped']}", 70),
                "", ""]
            color = MISSED if r.get("error") else NEUTRAL
            colors = [color] * 7
        else:
            met = r.get("target_met")
            status = ("" if not r.get("target") else
                      ("met " if met else "MISSED " if met is False else "") + r["target"])
            ratio = r.get("ratio")
            base = r.get("baseline_name")
            cells = [r["scenario"], _short(r["name"], 46),
                     f"{fmt_value(r.get('median'), unit)} {unit}",
                     fmt_value(r.get("baseline_median"), unit) if base else "",
                     _short(base, 28) if base else "",
                     _ratio(ratio) if ratio is not None else "",
                     _short(status, 33)]
            colors = ["black"] * 5 + [_status_color(met)] * 2
            if not r.get("ok", True):
                colors = [MISSED] * 7
                cells[6] = "WRONG ANSWER"
        for (x, _head, ha), text, color in zip(cols, cells, colors, strict=True):
            ax.text(x, y(i), text, fontsize=7.5, ha=ha, va="center", color=color)
    names = ", ".join(os.path.basename(f) for f in figures) or "none"
    ax.text(0.01, 0.35 / total, f"{info.get('time_utc', '?')}, {info.get('cores_usable', '?')}"
            f" cores; medians of runs. Figures: {names}", fontsize=7, color=NEUTRAL,
            va="center")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    return _save(fig, path)


FIGURES = (("throughput", throughput_figure), ("latency", latency_figure),
           ("state", state_figure), ("workers", workers_figure))


def write_charts(results: list[dict[str, Any]], path: str, info: dict[str, Any]) -> list[str]:
    """``path`` (e.g. ``DIR/results.png``) gets the overview; each figure with something to
    show is written beside it as ``DIR/results-NAME.png``. Returns every path written."""
    stem, ext = os.path.splitext(path)
    written = []
    for name, draw in FIGURES:
        target = f"{stem}-{name}{ext or '.png'}"
        try:
            out = draw(results, target, info)
        except Exception as exc:  # noqa: BLE001 - a figure that cannot be drawn is not a run failure
            print(f"streamproc bench: {name} figure not drawn: {type(exc).__name__}: {exc}",
                  file=sys.stderr)
            _plt().close("all")
            out = None
        if out is None and os.path.exists(target):
            os.remove(target)  # a figure from an earlier run must not pass for this one
        if out:
            written.append(out)
    return [overview_figure(results, path, info, written), *written]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) not in (1, 2):
        print("usage: python -m streamproc.bench.chart RESULTS.json [OUT.png]", file=sys.stderr)
        return 2
    with open(argv[0]) as fh:
        results = json.load(fh)
    out = argv[1] if len(argv) == 2 else os.path.splitext(argv[0])[0] + ".png"
    for p in write_charts(results["results"], out, results.get("machine", {})):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())

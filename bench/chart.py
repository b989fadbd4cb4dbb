"""The figure of a ``streamproc bench`` run: one PNG, 1000 px wide, one panel per question.

    python -m streamproc.bench.chart bench-out/results.json [OUT.png]   # default: beside it

A panel is drawn only when ``results.json`` has rows for it; a row that failed or was
skipped says why in place of its bars. From top to bottom:

1. throughput: each rate measured against its same-run baseline (detect, kafka, mqtt,
   notify, ingest, peers: whichever ran), one bar pair per row on a log axis, the ratio
   printed beside the pair, the target drawn across the pair where the row has one;
2. latency: p50/p95/p99 (whichever the rows carry) per measure, and per alert kind where
   the row breaks it down, against the p99 target;
3. state: bytes per tracked key per detector against the target line;
4. workers: events/s against worker count, with ideal linear scaling from 1 worker;
5. peers: raw client, Bytewax and streamproc side by side (events/s, start to first record,
   peak RSS), with the targets (0.65x raw, 2x Bytewax, ...) as lines.

The figure title carries the machine line, so a PNG read alone still says where it ran.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

WIDTH_IN = 10.0  # at DPI this is 1000 px: the width RESULTS.md shows
DPI = 100
HEADER_IN = 0.8  # figure title and machine line
FOOTER_IN = 0.4  # how to read the bars
PANEL_TOP_IN = 0.62  # a panel's title and subtitle
PANEL_BOTTOM_IN = 0.55  # x tick labels and the axis label
LEFT = 0.27  # every panel's plot starts here: the column left of it holds the labels
RIGHT = 0.89  # and ends here: the column right of it holds ratios and verdicts
LABEL_CHARS = 38  # a label wrapped to this many characters fits the left column at 8 pt

OURS = "#1f77b4"
BASE = "#a0a0a0"
BASE_DARK = "#707070"
MET = "#2ca02c"
MISSED = "#d62728"
NEUTRAL = "#555555"
CLEAR = {"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 0.6}  # text over lines
PERCENTILE_STYLE = {
    50: ("o", "#9ecae1"),
    90: ("s", "#6baed6"),
    95: ("D", "#4292c6"),
    99: ("o", OURS),
}
OWN_PANEL = ("state", "workers")  # their rows answer their own question, not throughput's


@dataclass(frozen=True, slots=True)
class Panel:
    """One question's panel: ``draw`` fills a subfigure ``height`` inches tall."""

    name: str
    height: float
    draw: Callable[[Any], None]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# -- reading rows ----------------------------------------------------------------------------


def _measured(r: dict[str, Any]) -> bool:
    return bool(r.get("runs")) and not r.get("error") and not r.get("skipped")


def _why_not(r: dict[str, Any]) -> str:
    if r.get("error"):
        return f"FAILED: {r['error']}"
    if r.get("skipped"):
        return f"not run: {r['skipped']}"
    return "not measured"


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "\u2026"


def _wrap(text: str, width: int = LABEL_CHARS, lines: int = 2) -> str:
    wrapped = textwrap.wrap(text, width, break_on_hyphens=False) or [text]
    if len(wrapped) > lines:
        wrapped = [*wrapped[: lines - 1], _short(" ".join(wrapped[lines - 1 :]), width)]
    return "\n".join(wrapped)


def _fmt(value: float, unit: str = "") -> str:
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip()


def _ratio(ratio: float) -> str:
    if ratio >= 100:
        return f"{ratio:,.0f}x"
    return f"{ratio:.2f}x" if ratio >= 0.1 else f"{ratio:.2g}x"


def _status_color(met: bool | None) -> str:
    return MET if met else MISSED if met is False else NEUTRAL


def _verdict(met: bool | None) -> str:
    return "met" if met else "MISSED" if met is False else "?"


_CLAUSE = re.compile(r"([<>]=?)\s*(\d[\d,]*(?:\.\d+)?)\s*(%|x)?")


def target_values(r: dict[str, Any]) -> list[tuple[float, str]]:
    """A row's target as values on the row's own axis, with the clause each came from.

    ``>= 300,000 events/s`` is 300000; ``>= 60% of raw`` and ``>= 0.65x raw`` are that
    fraction of the baseline median. A target on time where the row measures a rate
    (``<= 2x the built-ins' judging time``) is the baseline rate divided by the factor. A
    target per server core is not on the row's axis and gives no value.
    """
    out = []
    for clause in (r.get("target") or "").split(" and "):
        m = _CLAUSE.search(clause)
        if not m or "core" in clause:
            continue
        value = float(m.group(2).replace(",", ""))
        if m.group(3) in ("%", "x"):
            base = r.get("baseline_median")
            if not base:
                continue
            factor = value / 100.0 if m.group(3) == "%" else value
            value = base / factor if "time" in clause else base * factor
        out.append((value, clause.strip()))
    return out


def _min_max(runs: list[float], median: float) -> list[list[float]]:
    return [[median - min(runs)], [max(runs) - median]]


# -- drawing helpers -------------------------------------------------------------------------


def _plot_axes(
    sf: Any, height: float, left: float = LEFT, right: float = RIGHT, top_in: float = PANEL_TOP_IN
) -> Any:
    bottom = PANEL_BOTTOM_IN / height
    top = 1 - top_in / height
    ax = sf.add_axes((left, bottom, right - left, top - bottom))
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=8)
    return ax


def _heading(
    sf: Any, height: float, title: str, subtitle: str, verdict: tuple[str, str] | None = None
) -> None:
    from matplotlib.lines import Line2D

    sf.add_artist(
        Line2D([0.01, 0.99], [1, 1], transform=sf.transSubfigure, color="#cccccc", linewidth=0.8)
    )
    sf.text(0.01, 1 - 0.2 / height, title, fontsize=12, fontweight="bold", va="center")
    sf.text(0.01, 1 - 0.43 / height, subtitle, fontsize=8.5, color=NEUTRAL, va="center")
    if verdict:
        sf.text(
            0.985,
            1 - 0.2 / height,
            verdict[0],
            fontsize=9.5,
            fontweight="bold",
            color=verdict[1],
            ha="right",
            va="center",
        )


def _tally(judged: list[bool]) -> tuple[str, str] | None:
    """A panel's verdict, top right: how many of its targets were missed."""
    if not judged:
        return None
    if all(judged):
        return f"targets met: {len(judged)} of {len(judged)}", MET
    return f"targets missed: {judged.count(False)} of {len(judged)}", MISSED


def _verdict_of(rows: list[dict[str, Any]]) -> tuple[str, str] | None:
    return _tally(
        [
            bool(r["target_met"])
            for r in rows
            if r.get("target") and _measured(r) and r.get("target_met") is not None
        ]
    )


def _legend(sf: Any, height: float, handles: list[Any]) -> None:
    sf.legend(
        handles=handles,
        loc="center right",
        bbox_to_anchor=(0.99, 1 - 0.43 / height),
        ncols=len(handles),
        frameon=False,
        fontsize=8,
        handlelength=1.6,
        columnspacing=1.2,
    )


def _patch(color: str, label: str) -> Any:
    from matplotlib.patches import Patch

    return Patch(color=color, label=label)


def _dash(color: str, label: str) -> Any:
    from matplotlib.lines import Line2D

    return Line2D([], [], color=color, linestyle="--", linewidth=1.4, label=label)


def _note(ax: Any, y: float, text: str, color: str = NEUTRAL) -> None:
    ax.text(
        0.01,
        y,
        _short(text, 110),
        transform=ax.get_yaxis_transform(),
        va="center",
        ha="left",
        fontsize=8,
        style="italic",
        color=color,
    )


def _not_measured(name: str, title: str, rows: list[dict[str, Any]]) -> Panel:
    """A panel whose scenario ran but measured nothing: its title and why, no empty axes."""
    whys = list(dict.fromkeys(_why_not(r) for r in rows if not _measured(r))) or ["not measured"]
    height = 0.35 + 0.22 * len(whys) + 0.2

    def draw(sf: Any) -> None:
        _heading(sf, height, title, "")
        for i, why in enumerate(whys):
            sf.text(
                0.01,
                1 - (0.35 + 0.22 * i) / height,
                _short(why, 150),
                fontsize=8.5,
                style="italic",
                va="top",
                color=MISSED if why.startswith("FAILED") else NEUTRAL,
            )

    return Panel(name, height, draw)


def _log_limits(values: list[float], room: float) -> tuple[float, float]:
    """A log axis that starts below the smallest value (so every bar shows) and leaves
    ``room`` (a fraction of the width) right of the largest for its label."""
    positive = [v for v in values if v > 0] or [1.0, 10.0]
    lo, hi = min(positive), max(positive)
    left = 10 ** math.floor(math.log10(lo) - 0.3)
    span = math.log10(hi) - math.log10(left)
    return left, 10 ** (math.log10(left) + span / (1 - room))


def _si_formatter() -> Any:
    from matplotlib.ticker import FuncFormatter

    def fmt(x: float, _pos: int) -> str:
        for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if abs(x) >= div:
                return f"{x / div:g}{suffix}"
        return f"{x:g}"

    return FuncFormatter(fmt)


# -- 1. throughput against same-run baselines --------------------------------------------------


def _throughput_rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for r in results:
        if r.get("scenario") in OWN_PANEL:
            continue
        if _measured(r):
            if r.get("baseline_runs") and str(r.get("unit", "")).endswith("/s"):
                rows.append(r)
        elif "latency" not in r.get("name", ""):
            rows.append(r)
    return rows


def throughput_panel(results: list[dict[str, Any]]) -> Panel | None:
    rows = _throughput_rows(results)
    if not rows:
        return None
    height = PANEL_TOP_IN + PANEL_BOTTOM_IN + 0.55 * len(rows)

    def draw(sf: Any) -> None:
        _heading(
            sf,
            height,
            "Throughput against same-run baselines",
            "median of runs, whiskers min-max; ratio = streamproc / baseline",
            _verdict_of(rows),
        )
        _legend(
            sf,
            height,
            [_patch(OURS, "streamproc"), _patch(BASE, "baseline"), _dash(NEUTRAL, "target")],
        )
        ax = _plot_axes(sf, height)
        ys = list(range(len(rows) - 1, -1, -1))
        measured = [r for r in rows if _measured(r)]
        values = [
            v
            for r in measured
            for v in (*r["runs"], *r["baseline_runs"], *(t for t, _ in target_values(r)))
        ]
        left, right = _log_limits(values, room=0.22)
        ax.set_xscale("log")
        ax.set_xlim(left, right)
        ax.set_ylim(-0.6, len(rows) - 0.4)
        labels = []
        for y, r in zip(ys, rows, strict=True):
            name = _wrap(f"{r['scenario']}: {r['name']}")
            if not _measured(r):
                labels.append(name)
                _note(ax, y, _why_not(r), MISSED if r.get("error") else NEUTRAL)
                continue
            labels.append(name + "\nvs " + _short(r["baseline_name"], LABEL_CHARS - 3))
            _bar_pair(ax, y, r)
        ax.set_yticks(ys, labels, fontsize=8)
        ax.tick_params(axis="y", length=0)
        ax.xaxis.set_major_formatter(_si_formatter())
        ax.set_xlabel("per second, log scale (unit at each bar)", fontsize=8)
        ax.grid(axis="x", alpha=0.25, which="major")

    return Panel("throughput", height, draw)


def _bar_pair(ax: Any, y: float, r: dict[str, Any]) -> None:
    h = 0.34
    ours_y, base_y = y + h / 2 + 0.01, y - h / 2 - 0.01
    unit = r.get("unit", "")
    ok = r.get("ok", True)
    for yy, median, runs, color in (
        (ours_y, r["median"], r["runs"], OURS if ok else MISSED),
        (base_y, r["baseline_median"], r["baseline_runs"], BASE),
    ):
        ax.barh(
            yy,
            median,
            height=h,
            color=color,
            xerr=_min_max(runs, median),
            capsize=2,
            error_kw={"elinewidth": 0.8, "ecolor": "#333333"},
        )
        ax.annotate(
            _fmt(median, unit),
            (max(runs), yy),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=7.5,
            bbox=CLEAR,
        )
    met = r.get("target_met")
    for value, _clause in target_values(r):
        ax.vlines(
            value, y - 0.45, y + 0.45, colors=_status_color(met), linestyles="--", linewidth=1.4
        )
    column = ax.get_yaxis_transform()
    if not ok:
        ratio, under, color = "WRONG", "answer", MISSED
    else:
        ratio = _ratio(r["ratio"]) if r.get("ratio") is not None else "-"
        under = f"target {_verdict(met)}" if r.get("target") else "no target"
        color = _status_color(met)
    ax.text(
        1.015,
        y + 0.08,
        ratio,
        transform=column,
        ha="left",
        va="bottom",
        fontsize=12,
        fontweight="bold",
        color=color,
        clip_on=False,
    )
    ax.text(
        1.015,
        y + 0.04,
        under,
        transform=column,
        ha="left",
        va="top",
        fontsize=7.5,
        color=color if r.get("target") or not ok else NEUTRAL,
        clip_on=False,
    )


# -- 2. latency percentiles ----------------------------------------------------------------------

_PCT = re.compile(r"\bp(\d{2,3})\b")
_PCT_KEY = re.compile(r"^p(\d{2,3})_ms$")


@dataclass
class _Series:
    """One latency measure: its percentiles overall and per alert kind, and its target."""

    title: str
    pcts: dict[int, float]
    count: int | None
    kinds: dict[str, tuple[dict[int, float], int | None]]
    target: tuple[float, str, bool | None] | None
    why_not: str | None


def _latency_series(results: list[dict[str, Any]]) -> list[_Series]:
    grouped: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]] = {}
    for r in results:
        m = _PCT.search(r.get("name", ""))
        if m is None or r.get("unit") not in ("ms", "-"):
            continue
        what = re.sub(r"\s+", " ", _PCT.sub("", r["name"])).strip()
        grouped.setdefault((r["scenario"], what), []).append((int(m.group(1)), r))
    out = []
    for (scenario, what), rows in grouped.items():
        pcts = {p: r["median"] for p, r in rows if _measured(r)}
        extra: dict[str, Any] = {}
        for _, r in rows:
            extra.update(r.get("extra") or {})
        kinds = {}
        for kind, v in sorted((extra.get("by_kind") or {}).items()):
            kp = {
                int(m.group(1)): x
                for k, x in v.items()
                if (m := _PCT_KEY.match(k)) and x is not None
            }
            if kp:
                kinds[kind] = (kp, v.get("alerts"))
        target = next(
            (
                (values[0][0], f"p{p} {values[0][1]}", r.get("target_met"))
                for p, r in rows
                if _measured(r) and (values := target_values(r))
            ),
            None,
        )
        rate = extra.get("rate")
        title = f"{scenario}: {what}" + (f" ({rate:,.0f} events/s)" if rate else "")
        why = next((_why_not(r) for _, r in rows if not _measured(r)), None)
        out.append(
            _Series(
                title,
                pcts,
                extra.get("timed_alerts") or extra.get("alerts"),
                kinds,
                target,
                None if pcts else why or "not measured",
            )
        )
    return out


def latency_panel(results: list[dict[str, Any]]) -> Panel | None:
    series = _latency_series(results)
    if not series:
        return None
    lines = sum(2 + len(s.kinds) for s in series)
    height = PANEL_TOP_IN + PANEL_BOTTOM_IN + 0.21 * lines + 0.1
    used = sorted(
        {p for s in series for p in (*s.pcts, *(p for kp, _ in s.kinds.values() for p in kp))}
    )
    verdict = _tally([bool(s.target[2]) for s in series if s.target and s.target[2] is not None])

    def draw(sf: Any) -> None:
        from matplotlib.lines import Line2D

        _heading(
            sf,
            height,
            "Latency percentiles",
            "per measure, and per alert kind where measured (alerts timed)",
            verdict,
        )
        handles = [
            Line2D(
                [],
                [],
                marker=PERCENTILE_STYLE.get(p, ("o", OURS))[0],
                linestyle="",
                color=PERCENTILE_STYLE.get(p, ("o", OURS))[1],
                label=f"p{p}",
            )
            for p in used
        ]
        _legend(sf, height, [*handles, _dash(NEUTRAL, "p99 target")])
        ax = _plot_axes(sf, height)
        values = [
            v
            for s in series
            for v in (
                *s.pcts.values(),
                *(x for kp, _ in s.kinds.values() for x in kp.values()),
                *([s.target[0]] if s.target else []),
            )
        ]
        left, right = _log_limits(values, room=0.2)
        ax.set_xscale("log")
        ax.set_xlim(left, right)
        y = lines - 1
        ticks, labels = [], []
        for s in series:
            ax.text(
                0.0,
                y,
                "  " + s.title + (f";  target {s.target[1]}" if s.target else ""),
                transform=ax.get_yaxis_transform(),
                fontsize=8.5,
                fontweight="bold",
                va="center",
                color=_status_color(s.target[2]) if s.target else "black",
            )
            top = y
            y -= 1
            rows = [
                ("all" + (f" ({s.count:,} alerts)" if s.count else ""), s.pcts),
                *((f"{k} ({n:,})" if n else k, kp) for k, (kp, n) in s.kinds.items()),
            ]
            for label, pcts in rows:
                ticks.append(y)
                labels.append(label)
                if pcts:
                    _percentile_dots(ax, y, pcts)
                else:
                    _note(ax, y, s.why_not or "not measured")
                y -= 1
            if s.target:
                ax.vlines(
                    s.target[0],
                    y + 0.5,
                    top - 0.5,
                    colors=_status_color(s.target[2]),
                    linestyles="--",
                    linewidth=1.4,
                )
        ax.set_ylim(-0.7, lines - 0.3)
        ax.set_yticks(ticks, labels, fontsize=8)
        ax.tick_params(axis="y", length=0)
        ax.xaxis.set_major_formatter(_si_formatter())
        ax.set_xlabel("milliseconds, log scale", fontsize=8)
        ax.grid(axis="x", alpha=0.25, which="major")

    return Panel("latency", height, draw)


def _percentile_dots(ax: Any, y: float, pcts: dict[int, float]) -> None:
    ordered = sorted(pcts.items())
    xs = [max(v, 1e-3) for _, v in ordered]
    ax.plot([min(xs), max(xs)], [y, y], color="#bbbbbb", linewidth=1.2, zorder=1)
    for p, x in zip((p for p, _ in ordered), xs, strict=True):
        marker, color = PERCENTILE_STYLE.get(p, ("o", OURS))
        ax.plot([x], [y], marker=marker, color=color, markersize=6, linestyle="", zorder=2)
    ax.annotate(
        " / ".join(_fmt(v) for _, v in ordered) + " ms",
        (max(xs), y),
        xytext=(6, 0),
        textcoords="offset points",
        va="center",
        fontsize=7.5,
        bbox=CLEAR,
    )


# -- 3. state: bytes per key against the target ------------------------------------------------


def state_panel(results: list[dict[str, Any]]) -> Panel | None:
    rows = [
        r
        for r in results
        if r.get("scenario") == "state" and (r.get("unit") == "bytes/key" or not _measured(r))
    ]
    if not rows:
        return None
    title = "State: bytes per tracked key"
    if not any(_measured(r) for r in rows):
        return _not_measured("state", title, rows)
    height = PANEL_TOP_IN + PANEL_BOTTOM_IN + 0.27 * len(rows) + 0.15

    def draw(sf: Any) -> None:
        _heading(
            sf,
            height,
            title,
            "per detector, heap measured with tracemalloc; whiskers min-max",
            _verdict_of(rows),
        )
        _legend(
            sf,
            height,
            [
                _patch(OURS, "within target"),
                _patch(MISSED, "over target"),
                _dash(NEUTRAL, "target"),
            ],
        )
        ax = _plot_axes(sf, height)
        ys = list(range(len(rows) - 1, -1, -1))
        labels: list[str] = []
        top = 1.0
        lines: list[tuple[float, str, bool | None]] = []
        for y, r in zip(ys, rows, strict=True):
            if not _measured(r):
                labels.append(_short(r["name"], LABEL_CHARS))
                _note(ax, y, _why_not(r), MISSED if r.get("error") else NEUTRAL)
                continue
            labels.append(r["name"].split()[0])
            v = r["median"]
            met = r.get("target_met")
            ax.barh(
                y,
                v,
                height=0.62,
                color=MISSED if met is False else OURS,
                xerr=_min_max(r["runs"], v),
                capsize=2,
                error_kw={"elinewidth": 0.8},
            )
            ax.annotate(
                _fmt(v),
                (max(r["runs"]), y),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=7.5,
                bbox=CLEAR,
            )
            top = max(top, max(r["runs"]))
            lines.extend((value, clause, met) for value, clause in target_values(r))
        for value, clause in dict.fromkeys((v, c) for v, c, _ in lines):
            met = all(m is not False for v, c, m in lines if (v, c) == (value, clause))
            ax.axvline(value, color=_status_color(met), linestyle="--", linewidth=1.4)
            ax.annotate(
                f"target {clause}",
                (value, 1.0),
                xycoords=ax.get_xaxis_transform(),
                xytext=(-3, -2),
                textcoords="offset points",
                ha="right",
                va="top",
                fontsize=7.5,
                color=_status_color(met),
            )
            top = max(top, value)
        ax.set_xlim(0, top * 1.12)
        ax.set_ylim(-0.6, len(rows) - 0.4)
        ax.set_yticks(ys, labels, fontsize=8)
        ax.tick_params(axis="y", length=0)
        ax.set_xlabel("bytes per tracked key", fontsize=8)
        ax.grid(axis="x", alpha=0.25)

    return Panel("state", height, draw)


# -- 4. workers: events/s against worker count -------------------------------------------------

_WORKERS = re.compile(r"\s*(\d+) workers?\b")


def workers_panel(results: list[dict[str, Any]], info: dict[str, Any]) -> Panel | None:
    rows = [r for r in results if r.get("scenario") == "workers"]
    if not rows:
        return None
    points = sorted(
        (
            (int(m.group(1)), r)
            for r in rows
            if (m := _WORKERS.match(r.get("name", ""))) and _measured(r)
        ),
        key=lambda point: point[0],
    )
    extra: dict[str, Any] = next(
        (r["extra"] for r in rows if (r.get("extra") or {}).get("worker_counts")), {}
    )
    title = "Workers: committed events/s against worker count"
    if not points:
        return _not_measured("workers", title, rows)
    height = PANEL_TOP_IN + PANEL_BOTTOM_IN + 2.3

    def draw(sf: Any) -> None:
        setup = (f"{extra['partitions']} partitions, " if extra.get("partitions") else "") + (
            f"{extra['cores']} cores" if extra.get("cores") else ""
        )
        _heading(
            sf, height, title, "median of runs, whiskers min-max" + (f"; {setup}" if setup else "")
        )
        ax = _plot_axes(sf, height)
        _legend(
            sf, height, [_patch(OURS, "streamproc"), _dash(BASE, "ideal: linear from 1 worker")]
        )
        ks = [k for k, _ in points]
        med = [r["median"] for _, r in points]
        lo = [r["median"] - min(r["runs"]) for _, r in points]
        hi = [max(r["runs"]) - r["median"] for _, r in points]
        one = dict(points).get(1)
        if one is not None:
            ax.plot(
                [1, max(ks)],
                [one["median"], one["median"] * max(ks)],
                linestyle="--",
                color=BASE,
                linewidth=1.4,
            )
        ax.errorbar(ks, med, yerr=[lo, hi], marker="o", color=OURS, capsize=4, linewidth=2)
        summary = []
        for k, v in zip(ks, med, strict=True):
            ax.annotate(
                _fmt(v, "events/s"), (k, v), textcoords="offset points", xytext=(8, -10), fontsize=8
            )
            if one is not None and k != 1:
                summary.append(f"{k} workers: {v / one['median']:.2f}x of 1 (ideal {k}x)")
        cores = extra.get("cores") or info.get("cores_usable")
        if cores and max(ks) > cores:
            ax.axvline(cores, color=NEUTRAL, linestyle=":", linewidth=1)
            ax.annotate(
                f"{cores} cores",
                (cores, 1.0),
                xycoords=ax.get_xaxis_transform(),
                xytext=(3, -2),
                textcoords="offset points",
                va="top",
                fontsize=7.5,
                color=NEUTRAL,
            )
        sf.text(
            0.01,
            1 - (PANEL_TOP_IN + 0.15) / height,
            "\n".join(summary),
            fontsize=8.5,
            va="top",
            linespacing=1.5,
        )
        ax.set_xticks(ks)
        ax.set_xlim(0.7, max(ks) + 0.3 + 0.08 * max(ks))
        ax.set_ylim(
            0,
            max(
                [
                    *(m + h for m, h in zip(med, hi, strict=True)),
                    *([one["median"] * max(ks)] if one is not None else []),
                ]
            )
            * 1.15,
        )
        ax.set_xlabel("workers (processes)", fontsize=8)
        ax.set_ylabel("events/s committed", fontsize=8)
        ax.yaxis.set_major_formatter(_si_formatter())
        ax.grid(alpha=0.25)

    return Panel("workers", height, draw)


# -- 5. peers: raw client, Bytewax and streamproc side by side ---------------------------------


@dataclass
class _Measure:
    """One peers measure for each contestant: runs per contestant, targets as lines."""

    title: str
    unit: str
    runs: dict[str, list[float]]
    targets: list[tuple[float, str, bool | None]]


CONTESTANTS = (
    ("raw", "raw client", BASE),
    ("bytewax", "Bytewax", BASE_DARK),
    ("streamproc", "streamproc", OURS),
)


def _peers_measures(rows: list[dict[str, Any]]) -> tuple[list[_Measure], list[str]]:
    rates = [r for r in rows if r.get("unit") == "events/s" and _measured(r)]
    vs_bw = next(
        (
            r
            for r in rows
            if "Bytewax" in (r.get("baseline_name") or "") or "Bytewax" in r.get("name", "")
        ),
        None,
    )
    main = next((r for r in rates if r is not vs_bw), None)
    first = next((r for r in rows if r.get("unit") == "s" and _measured(r)), None)
    rss = next((r for r in rows if r.get("unit") == "MB" and _measured(r)), None)
    runners = ((main or {}).get("extra") or {}).get("runners") or {}

    def runs(who: str, key: str, row: dict[str, Any] | None, bytewax_key: str) -> list[float]:
        if who in runners:
            return [x[key] for x in runners[who].get("runs", []) if x.get(key) is not None]
        if row is None:
            return []
        if who == "streamproc":
            return list(row["runs"])
        if who == "raw":
            return list(row.get("baseline_runs") or [])
        value = (row.get("extra") or {}).get(bytewax_key)
        return [value] if value is not None else []

    measures = []
    if main is not None:
        bw_runs = runs("bytewax", "events_per_s", None, "")
        if not bw_runs and vs_bw is not None and _measured(vs_bw):
            bw_runs = list(vs_bw["baseline_runs"])
        targets = [
            (v, c.replace(">= ", "").replace(">=", ""), r.get("target_met"))
            for r in (main, vs_bw)
            if r is not None and _measured(r)
            for v, c in target_values(r)
        ]
        measures.append(
            _Measure(
                "events/s\nhigher is better",
                "/s",
                {
                    "raw": runs("raw", "events_per_s", main, ""),
                    "bytewax": bw_runs,
                    "streamproc": runs("streamproc", "events_per_s", main, ""),
                },
                targets,
            )
        )
    for row, key, bw_key, title, unit in (
        (first, "first_record_s", "bytewax_first_record_s", "start to first record, s", "s"),
        (rss, "peak_rss_mb", "bytewax_peak_rss_mb", "peak RSS, MB", "MB"),
    ):
        if row is not None:
            measures.append(
                _Measure(
                    title + "\nlower is better",
                    unit,
                    {who: runs(who, key, row, bw_key) for who, _, _ in CONTESTANTS},
                    [(v, c, row.get("target_met")) for v, c in target_values(row)],
                )
            )
    notes = []
    for r, what in (
        (main, "events/s vs raw"),
        (vs_bw, "events/s vs Bytewax"),
        (first, "first record"),
        (rss, "peak RSS"),
    ):
        if r is not None and _measured(r) and r.get("target"):
            value = (
                _ratio(r["ratio"])
                if r.get("unit") == "events/s" and r.get("ratio") is not None
                else _fmt(r["median"], r["unit"])
            )
            notes.append(f"{what}: {_verdict(r.get('target_met'))}\n{value}; target {r['target']}")
    notes += [_why_not(r) for r in rows if not _measured(r)]
    return measures, notes


def peers_panel(results: list[dict[str, Any]]) -> Panel | None:
    rows = [r for r in results if r.get("scenario") == "peers"]
    if not rows:
        return None
    measures, notes = _peers_measures(rows)
    title = "Peers: the same rule on the same Kafka topic"
    if not measures:
        return _not_measured("peers", title, rows)
    height = PANEL_TOP_IN + PANEL_BOTTOM_IN + 2.9

    def draw(sf: Any) -> None:
        _heading(
            sf,
            height,
            title,
            "median of runs, whiskers min-max; targets as dashed lines",
            _verdict_of(rows),
        )
        _legend(sf, height, [_patch(color, label) for _, label, color in CONTESTANTS])
        y = 1 - (PANEL_TOP_IN + 0.15) / height
        for note in notes:
            wrapped = "\n".join(_wrap(line, 32, 2) for line in note.split("\n"))
            head = note.split("\n")[0]
            color = (
                MISSED
                if "MISSED" in head or "FAILED" in head
                else MET
                if head.endswith(": met")
                else NEUTRAL
            )
            sf.text(0.01, y, wrapped, fontsize=8, va="top", color=color, linespacing=1.3)
            y -= (0.17 * (wrapped.count("\n") + 1) + 0.1) / height
        gap = 0.05
        width = (RIGHT + 0.08 - LEFT - gap * (len(measures) - 1)) / len(measures)
        for i, m in enumerate(measures):
            x0 = LEFT + i * (width + gap)
            _peer_bars(_plot_axes(sf, height, x0, x0 + width, PANEL_TOP_IN + 0.45), m)

    return Panel("peers", height, draw)


def _peer_bars(ax: Any, m: _Measure) -> None:
    import statistics

    xs, top = [], 0.0
    for x, (who, _label, color) in enumerate(CONTESTANTS):
        runs = m.runs.get(who) or []
        xs.append(x)
        if not runs:
            ax.text(
                x,
                0,
                "not\nrun",
                ha="center",
                va="bottom",
                fontsize=7.5,
                style="italic",
                color=NEUTRAL,
            )
            continue
        median = statistics.median(runs)
        ax.bar(
            x,
            median,
            width=0.65,
            color=color,
            yerr=_min_max(runs, median),
            capsize=3,
            error_kw={"elinewidth": 0.8},
        )
        ax.annotate(
            _fmt(median),
            (x, max(runs)),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=7.5,
            bbox=CLEAR,
        )
        top = max(top, max(runs))
    for value, clause, met in m.targets:
        ax.axhline(value, color=_status_color(met), linestyle="--", linewidth=1.3)
        ax.annotate(
            clause,
            (1.0, value),
            xycoords=ax.get_yaxis_transform(),
            xytext=(-2, 2),
            textcoords="offset points",
            ha="right",
            va="bottom",
            fontsize=7.5,
            color=_status_color(met),
            bbox=CLEAR,
        )
        top = max(top, value)
    ax.set_ylim(0, (top or 1.0) * 1.25)
    ax.set_xticks(xs, [label.replace(" ", "\n", 1) for _, label, _ in CONTESTANTS], fontsize=7.5)
    ax.set_title(m.title, fontsize=8.5, loc="left")
    ax.yaxis.set_major_formatter(_si_formatter())
    ax.tick_params(axis="y", labelsize=7)
    ax.grid(axis="y", alpha=0.25)


# -- the figure ----------------------------------------------------------------------------------


def panels(results: list[dict[str, Any]], info: dict[str, Any]) -> list[Panel]:
    """The panels this run has rows for, in the order the figure shows them."""
    found = (
        throughput_panel(results),
        latency_panel(results),
        state_panel(results),
        workers_panel(results, info),
        peers_panel(results),
    )
    return [p for p in found if p is not None]


def _machine(info: dict[str, Any]) -> str:
    from .common import machine_line

    try:
        return machine_line(info)
    except (KeyError, IndexError, TypeError):
        return "machine not recorded"


def render(results: list[dict[str, Any]], info: dict[str, Any]) -> Any:
    """The figure: a title with the machine line, then one subfigure per panel, each
    labelled with the panel's name (``[sf.get_label() for sf in fig.subfigs]``)."""
    plt = _plt()
    drawn = panels(results, info)
    body = sum(p.height for p in drawn) or 0.6
    total = HEADER_IN + body + FOOTER_IN
    fig = plt.figure(figsize=(WIDTH_IN, total), dpi=DPI)
    fig.text(
        0.01, 1 - 0.28 / total, "streamproc bench", fontsize=15, fontweight="bold", va="center"
    )
    if info.get("time_utc"):
        fig.text(
            0.99,
            1 - 0.28 / total,
            f"started {info['time_utc']}",
            fontsize=9,
            color=NEUTRAL,
            ha="right",
            va="center",
        )
    fig.text(
        0.01,
        1 - 0.6 / total,
        _wrap(_machine(info), 150, 2),
        fontsize=8.5,
        color=NEUTRAL,
        va="center",
    )
    fig.text(
        0.01,
        0.5 * FOOTER_IN / total,
        "Bars and dots are medians of the runs, whiskers min to max. Blue: streamproc; "
        "grey: a baseline measured in the same run. Dashed: a target (green met, red "
        "missed).",
        fontsize=7.5,
        color=NEUTRAL,
        va="center",
    )
    if not drawn:
        fig.text(
            0.01,
            (FOOTER_IN + 0.3) / total,
            "No scenario in this run has a chart; the numbers are in results.json.",
            fontsize=10,
            style="italic",
            va="center",
        )
        return fig
    # a subfigure ignores its gridspec's margins: the header and footer are rows of their own
    grid = fig.add_gridspec(
        len(drawn) + 2,
        1,
        hspace=0,
        height_ratios=[HEADER_IN, *(p.height for p in drawn), FOOTER_IN],
    )
    for i, panel in enumerate(drawn, start=1):
        sf = fig.add_subfigure(grid[i])
        sf.set_label(panel.name)
        try:
            panel.draw(sf)
        except Exception as exc:  # noqa: BLE001 - one panel's bug leaves the others standing
            for child in [*sf.axes, *sf.texts]:
                child.remove()
            sf.text(
                0.01,
                0.5,
                f"{panel.name}: panel not drawn: {type(exc).__name__}: {exc}",
                fontsize=9,
                color=MISSED,
                va="center",
            )
            print(
                f"streamproc bench: {panel.name} panel not drawn: {type(exc).__name__}: {exc}",
                file=sys.stderr,
            )
    return fig


def write_charts(results: list[dict[str, Any]], path: str, info: dict[str, Any]) -> list[str]:
    """Write the figure of ``results`` (the rows of results.json) to ``path``; returns
    ``[path]``. A panel that cannot be drawn says so in its place (see ``render``)."""
    fig = render(results, info)
    fig.savefig(path, dpi=DPI)
    _plt().close(fig)
    return [path]


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

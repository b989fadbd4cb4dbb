"""Where the time goes: a pyinstrument profile of a scenario's hot path.

    python -m streamproc.bench.profile detect --events 200000 --out bench-out/
    python -m streamproc.bench.profile kafka --events 200000 --out bench-out/

``detect`` profiles decode + all detectors through the runtime's Judge (what the detect
scenario times); ``kafka`` profiles the whole runtime consuming N records from the embedded
broker (what the kafka scenario times). Writes ``OUT/profile-<scenario>.txt`` (and .html)
and prints the text. Needs ``pip install pyinstrument`` (in the ``[bench]`` extra).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile


def profile_detect(n: int) -> object:
    from pyinstrument import Profiler

    from .common import Context
    from .detect import build_records, judge_all

    ctx = Context(events=n, runs=1, out=".")
    records = build_records(ctx, n)
    profiler = Profiler(interval=0.0005)
    profiler.start()
    seconds, alerts, _ = judge_all(records)
    profiler.stop()
    print(
        f"detect: {len(records):,} records in {seconds:.2f}s under the profiler "
        f"({len(records) / seconds:,.0f}/s), {len(alerts)} alerts",
        file=sys.stderr,
    )
    return profiler


def profile_kafka(n: int) -> object:
    from pyinstrument import Profiler

    from streamproc.commands.produce import kafka_items, kafka_topics
    from streamproc.ops.broker import EmbeddedKafka

    from .common import Context
    from .kafka import produce, run_runtime

    ctx = Context(events=n, runs=1, out=".")
    traffic = ctx.traffic("mixed", n)
    items = kafka_items(traffic, kafka_topics(None, list(traffic.records)))
    with EmbeddedKafka() as broker, tempfile.TemporaryDirectory() as state_dir:
        asyncio.run(produce(broker.bootstrap_servers, items))
        profiler = Profiler(interval=0.0005, async_mode="disabled")
        profiler.start()
        out = asyncio.run(
            run_runtime(broker.bootstrap_servers, "bench-profile", len(items), state_dir)
        )
        profiler.stop()
    print(
        f"kafka: {len(items):,} records in {out['seconds']:.2f}s under the profiler "
        f"({len(items) / out['seconds']:,.0f}/s)",
        file=sys.stderr,
    )
    return profiler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streamproc.bench.profile")
    parser.add_argument("scenario", choices=["detect", "kafka"])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--out", default="bench-out")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    profiler = (profile_detect if args.scenario == "detect" else profile_kafka)(args.events)
    text = profiler.output_text(unicode=False, color=False, show_all=False)  # type: ignore[attr-defined]
    base = os.path.join(args.out, f"profile-{args.scenario}")
    with open(base + ".txt", "w") as fh:
        fh.write(text)
    with open(base + ".html", "w") as fh:
        fh.write(profiler.output_html())  # type: ignore[attr-defined]
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""unkeyed: what a topic written without keys costs (Filebeat, Vector and Fluent Bit write
none unless told to).

The auth-logs stream that ``streamproc produce --scenario auth`` makes, with every auth
detector, through one worker on the embedded broker, its topic (4 partitions) written twice
in turn: keyed by username (``keyed_by: username``: only password_spray and
distributed_brute_force are re-keyed, by ip_address, and shipped the failures), then with
no key (every detector keyed by username or ip_address is re-keyed: nearly every record is
written once more, read back, and judged a record at a time after the merge that puts its
sources back in event-time order).

Baseline (same run): the keyed topic. The ratio is what an unkeyed topic leaves of a keyed
one's events/s; both runs are checked against the generator's expected alerts. No target:
the row sizes a deployment (or argues for keying the topic at the producer).
"""

from __future__ import annotations

import asyncio
import tempfile
from typing import Any

from .common import Context, Row
from .kafka import committed_total, provision_internal_topics, run_runtime, verify_run

DEFAULT_EVENTS = 300_000
TOPIC = "logins"
PARTITIONS = 4
STEPS_PER_RUN = 2


def config_for(bootstrap: str, group: str, state_dir: str, keyed: bool) -> Any:
    from streamproc.config import parse_config

    binding: dict[str, Any] = {"topic": TOPIC, "family": "auth-logs"}
    if keyed:
        binding["keyed_by"] = "username"
    return parse_config(
        {
            "kafka": {"bootstrap_servers": bootstrap, "group_id": group},
            "topics": [binding],
            "state": {"checkpoint_interval": 10},
            "state_dir": state_dir,
        },
        file=None,
    )


def _one_run(
    ctx: Context, items: list[tuple[str, bytes | None, bytes]], keyed: bool, run_no: int
) -> dict[str, Any]:
    from streamproc.commands.produce import produce_kafka
    from streamproc.ops.broker import EmbeddedKafka

    n = len(items)
    what = "keyed" if keyed else "unkeyed"
    with EmbeddedKafka() as broker, tempfile.TemporaryDirectory() as state_dir:
        bs = broker.bootstrap_servers
        asyncio.run(produce_kafka({"bootstrap_servers": bs}, items, partitions={TOPIC: PARTITIONS}))
        group = f"bench-unkeyed-{what}-{run_no}"
        config = config_for(bs, group, state_dir, keyed)
        asyncio.run(provision_internal_topics(config))
        rt = asyncio.run(run_runtime(bs, group, n, state_dir, config=config))
        committed = asyncio.run(committed_total(bs, group, [TOPIC], PARTITIONS))
    rate = n / rt["seconds"] if rt["seconds"] else 0.0
    ctx.step(
        f"unkeyed run {run_no}: {what} {rate:,.0f}/s, {rt['appended']} alerts, "
        f"{rt['repartitioned_in']:,} copies judged"
    )
    return {"rate": rate, "committed": committed, **rt}


def run(ctx: Context) -> list[Row]:
    from streamproc.commands.produce import kafka_items, kafka_topics

    traffic = ctx.traffic("auth", ctx.n(DEFAULT_EVENTS))
    produced = kafka_items(traffic, kafka_topics(None, list(traffic.records)))
    keyed_items = [(TOPIC, key, value) for _, key, value in produced]
    unkeyed_items: list[tuple[str, bytes | None, bytes]] = [
        (TOPIC, None, value) for _, _, value in produced
    ]
    n = len(keyed_items)
    row = Row(
        "unkeyed",
        "every auth detector, topic with no keys (records re-keyed by username)",
        "events/s",
        baseline_name="the same topic keyed by username",
    )
    row.extra["events"] = n
    verified: dict[str, Any] | None = None
    for i in range(1, ctx.runs + 1):
        keyed = _one_run(ctx, keyed_items, True, i)
        unkeyed = _one_run(ctx, unkeyed_items, False, i)
        row.baseline_runs.append(keyed["rate"])
        row.runs.append(unkeyed["rate"])
        row.extra.setdefault("copies_judged", []).append(
            {"keyed": keyed["repartitioned_in"], "unkeyed": unkeyed["repartitioned_in"]}
        )
        for out in (keyed, unkeyed):
            check = verify_run(
                traffic.expected, out["alerts"], out["committed"], n, out["dead_letters"]
            )
            if verified is None or not check["ok"]:
                verified = check
    row.verified = verified
    return [row]

"""mapped: ns a record of judging auth batches of a binding with a field mapping, per event
(``STREAMPROC_COLUMNS=0``: the batch decoded by decode/batch.py, each record mapped on its
own, every record an Event the detectors judge) against from columns (decode/frames.py:
msgspec reads the source keys, the mapping computed column-wise).

The records are the peers workload's (``peers_workload.py``: auth events, ~2% failures,
millisecond times) with its keys rewritten five ways: as they are (no mapping: the reference
of the column path), renamed as an nginx-style JSON log names them (``time``, ``user``,
``remote_addr``, ``status`` with a value map ``ok``/``FAIL``), flattened ECS
(``"@timestamp"``, ``"user.name"``, ``"source.ip"``, ``"event.outcome"`` with a value map),
nested ECS as Filebeat writes it (``{"user": {"name": ..}}``, the agent's, host's and
log file's objects beside; ~640 B a record), read by the flattened ECS mapping, and AWS
CloudTrail's console sign-ins (``userIdentity.userName``, ``responseElements.ConsoleLogin``
with a value map, ``requestParameters`` null, an error message on failures; ~1 KB a record).
Each is judged through the runtime's Judge, brute_force only, in batches of 1,250 (a
partition's share of a 5,000-record fetch) a partition at a time; the two paths alternate, and
each figure is the median of ``--runs`` passes. Both must raise the same alerts.

    PYTHONPATH=. python3 -m bench.mapped --events 200000 --runs 7

One run on the shared 2-core development machine under load from other jobs (``--events
100000 --runs 5``; ns a record, per event against from columns), when a mapped binding's
records were still decoded one at a time per event: contract names 2,958 / 1,351,
nginx-style names 11,516 / 2,545, flattened ECS 13,358 / 3,467. Since they are decoded a batch
at a time, ``streamproc bench`` (2026-11-30, 20:31): flattened ECS 131,207 events/s per
event against 364,597 from columns, nginx-style 106,247 against 312,641. Instructions a
record (cachegrind, steadier there): see streamproc/decode/frames.py.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
import zlib
from typing import Any

import orjson

BATCH = 1250
TOPIC = "auth"
ECS: dict[str, Any] = {
    "timestamp": "@timestamp",
    "username": "user.name",
    "ip_address": ["source.ip", "client.ip"],
    "success": {"path": "event.outcome", "map": {"success": True, "failure": False}},
    "user_agent": "user_agent.original",
    "country": "source.geo.country_iso_code",
}
CLOUDTRAIL: dict[str, Any] = {
    "timestamp": "eventTime",
    "username": "userIdentity.userName",
    "ip_address": "sourceIPAddress",
    "success": {
        "path": "responseElements.ConsoleLogin",
        "map": {"Success": True, "Failure": False},
    },
    "user_agent": "userAgent",
}
SHAPES: dict[str, tuple[dict[str, str], dict[str, Any] | None]] = {
    "contract names": ({}, None),
    "renamed (nginx JSON)": (
        {"timestamp": "time", "username": "user", "ip_address": "remote_addr"},
        {
            "timestamp": "time",
            "username": "user",
            "ip_address": "remote_addr",
            "success": {"path": "status", "map": {"ok": True, "fail": False}},
        },
    ),
    "flattened ECS": (
        {
            "timestamp": "@timestamp",
            "username": "user.name",
            "ip_address": "source.ip",
            "user_agent": "user_agent.original",
            "country": "source.geo.country_iso_code",
        },
        ECS,
    ),
    # Filebeat's nested ECS (``nested_ecs``): the same mapping reads it, through its objects
    "nested ECS (Filebeat)": ({}, ECS),
    # AWS CloudTrail's console sign-in events (``cloudtrail_signin``)
    "CloudTrail sign-in": ({}, CLOUDTRAIL),
}


def nested_ecs(data: dict[str, Any]) -> dict[str, Any]:
    """An auth record as Filebeat's system module writes it: ECS's objects, with the agent's,
    the host's and the log file's beside them."""
    out: dict[str, Any] = {
        "@timestamp": data["timestamp"],
        "agent": {"type": "filebeat", "version": "8.12.0", "hostname": "web-1", "id": "5e1c7c1e"},
        "ecs": {"version": "8.0.0"},
        "host": {"name": "web-1", "os": {"family": "debian", "kernel": "6.1.0"}},
        "event": {
            "category": ["authentication"],
            "kind": "event",
            "module": "system",
            "dataset": "system.auth",
            "outcome": "success" if data["success"] else "failure",
        },
        "user": {"name": data["username"]},
        "source": {"ip": data["ip_address"]},
        "log": {"file": {"path": "/var/log/auth.log"}, "offset": len(data["username"])},
        "message": "Accepted password" if data["success"] else "Failed password",
    }
    if "country" in data:
        out["source"]["geo"] = {"country_iso_code": data["country"]}
    if "user_agent" in data:
        out["user_agent"] = {"original": data["user_agent"]}
    return out


def cloudtrail_signin(data: dict[str, Any]) -> dict[str, Any]:
    """An auth record as CloudTrail writes a console sign-in (an EventBridge rule's topic of
    ``signin.amazonaws.com`` events): the identity an object, the outcome in
    ``responseElements``, ``requestParameters`` null, an error message on a failure only."""
    user, ok = data["username"], data["success"]
    out: dict[str, Any] = {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": f"AIDA{zlib.crc32(user.encode()):010d}",
            "arn": f"arn:aws:iam::123456789012:user/{user}",
            "accountId": "123456789012",
            "userName": user,
        },
        "eventTime": data["timestamp"],
        "eventSource": "signin.amazonaws.com",
        "eventName": "ConsoleLogin",
        "awsRegion": "us-east-1",
        "sourceIPAddress": data["ip_address"],
        "userAgent": data.get("user_agent", "Mozilla/5.0"),
        "requestParameters": None,
        "responseElements": {"ConsoleLogin": "Success" if ok else "Failure"},
        "additionalEventData": {
            "LoginTo": "https://console.aws.amazon.com/console/home",
            "MobileVersion": "No",
            "MFAUsed": "Yes" if len(user) % 2 else "No",
        },
        "eventID": f"{zlib.crc32(repr(data).encode()):08x}-0000-4000-8000-000000000000",
        "readOnly": False,
        "eventType": "AwsConsoleSignIn",
        "managementEvent": True,
        "recipientAccountId": "123456789012",
        "eventCategory": "Management",
        "tlsDetails": {
            "tlsVersion": "TLSv1.3",
            "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": "signin.aws.amazon.com",
        },
    }
    if not ok:
        out["errorMessage"] = "Failed authentication"
    return out


def rewrite(value: bytes, shape: str) -> bytes:
    if shape.startswith("nested"):
        return orjson.dumps(nested_ecs(orjson.loads(value)))
    if shape.startswith("CloudTrail"):
        return orjson.dumps(cloudtrail_signin(orjson.loads(value)))
    renames, _ = SHAPES[shape]
    if not renames:
        return value
    data = orjson.loads(value)
    out = {renames.get(k, k): v for k, v in data.items() if k != "success"}
    if shape.startswith("renamed"):
        out["status"] = "ok" if data["success"] else "FAIL"  # the map's lowercase retry
    else:
        out["event.outcome"] = "success" if data["success"] else "failure"
    return orjson.dumps(out)


def judge_once(
    records: list[Any], mapping: dict[str, Any] | None, columns: bool
) -> tuple[float, list[tuple[str, float]], int]:
    """Judge ``records`` (a partition's batches in turn): (the seconds it took, the alerts as
    sorted (fingerprint, event time) pairs, the batches judged from columns)."""
    from streamproc.config import parse_config
    from streamproc.detectors import REGISTRY
    from streamproc.pipeline.runtime import Judge

    os.environ["STREAMPROC_COLUMNS"] = "1" if columns else "0"
    off = {k: {"enabled": False} for k, c in REGISTRY.items() if c.family == "auth-logs"}
    del off["brute_force"]
    binding: dict[str, Any] = {"topic": TOPIC, "family": "auth-logs", "detectors": off}
    if mapping is not None:
        binding["fields"] = mapping
    judge = Judge(parse_config({"topics": [binding]}, file=None), partitioned=True)
    by_partition: dict[int, list[Any]] = {}
    for r in records:
        by_partition.setdefault(r.partition, []).append(r)
    alerts: list[Any] = []
    gc.collect()
    start = time.perf_counter()
    for _, mine in sorted(by_partition.items()):
        for i in range(0, len(mine), BATCH):
            alerts += judge.judge(mine[i : i + BATCH], "kafka")[0]
    seconds = time.perf_counter() - start
    alerts += judge.finish()
    return seconds, sorted((a.fingerprint, a.event_time) for a in alerts), judge.frame_batches


def shaped_records(encoded: list[tuple[bytes, bytes]], shape: str) -> list[Any]:
    """The workload's records with their keys rewritten to ``shape``, on the workload's
    partitions (by key, as the producer puts them)."""
    from streamproc.decode import RawRecord

    from .peers_workload import PARTITIONS

    offsets = [0] * PARTITIONS
    records = []
    for key, value in encoded:
        p = zlib.crc32(key) % PARTITIONS
        records.append(RawRecord(rewrite(value, shape), TOPIC, p, offsets[p], key))
        offsets[p] += 1
    return records


def measure(records: list[Any], mapping: dict[str, Any] | None, runs: int) -> dict[str, Any]:
    """Both paths ``runs`` times, alternating: seconds each, the alerts (every pass must
    raise the same ones) and the batches the column path judged from columns."""
    times: dict[bool, list[float]] = {False: [], True: []}
    want = None
    framed = 0
    for _ in range(runs):
        for columns in (False, True):
            seconds, got, batches = judge_once(records, mapping, columns)
            times[columns].append(seconds)
            if columns:
                framed = batches
            if want is not None and got != want:
                raise AssertionError("the two paths raised other alerts")
            want = got
    return {
        "per_record": times[False],
        "columns": times[True],
        "alerts": want or [],
        "framed_batches": framed,
    }


DEFAULT_EVENTS = 200_000
STEPS_PER_RUN = 0
EXTRA_STEPS = 5  # the reference (the contract's own names), then each mapping's runs


def run(ctx: Any) -> list[Any]:
    """``streamproc bench mapped``: events/s of a mapped binding judged from columns against
    the same binding judged per event, in the same run; each mapped binding must
    raise exactly the alerts of the same records under the contract's names."""
    from streamproc.pipeline.runtime import tune_gc

    from .common import Row
    from .peers_workload import generate_peers

    tune_gc()
    n_events = ctx.n(DEFAULT_EVENTS)
    encoded = generate_peers(n_events, seed=ctx.seed).encoded()
    n = len(encoded)
    reference = measure(shaped_records(encoded, "contract names"), None, 1)
    ctx.step("mapped: the contract's own names")
    rows = []
    measured = {}
    for shape in list(SHAPES)[1:]:
        measured[shape] = measure(shaped_records(encoded, shape), SHAPES[shape][1], ctx.runs)
        ctx.step(f"mapped: {shape}, both paths")
    for shape, m in measured.items():
        same = m["alerts"] == reference["alerts"]
        rows.append(
            Row(
                "mapped",
                f"{shape} binding judged from columns (brute_force)",
                "events/s",
                runs=[n / s for s in m["columns"]],
                baseline_name="the same binding, per event",
                baseline_runs=[n / s for s in m["per_record"]],
                verified={
                    "ok": same and bool(reference["alerts"]),
                    "alerts": len(m["alerts"]),
                    "alerts_under_contract_names": len(reference["alerts"]),
                },
            )
        )
    return rows


def main() -> None:
    from streamproc.pipeline.runtime import tune_gc

    tune_gc()  # as Runtime.start does: measure what a deployment gets
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    from .peers_workload import generate_peers

    encoded = generate_peers(args.events, seed=1).encoded()
    n = len(encoded)
    for shape, (_, mapping) in SHAPES.items():
        m = measure(shaped_records(encoded, shape), mapping, args.runs)
        per_record, framed = (statistics.median(m[k]) * 1e9 / n for k in ("per_record", "columns"))
        print(
            f"{shape:22} per record {per_record:6.0f} ns  from columns {framed:6.0f} ns  "
            f"({per_record / framed:.2f}x; {m['framed_batches']} batches from columns, "
            f"{len(m['alerts'])} alerts)",
            flush=True,
        )


if __name__ == "__main__":
    main()

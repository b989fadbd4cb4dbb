"""What a generator run returns: the records per family, their event times, the alerts they
should raise and the incidents behind those alerts."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..contracts import get_contract


@dataclass(slots=True)
class Incident:
    """One injected incident: the alert ``kind`` it raises, when and for which key."""

    kind: str
    family: str
    start: float
    key: dict[str, Any]
    note: str = ""


@dataclass
class Traffic:
    """Generated records per family (event-time order) and the alerts they should raise."""

    scenario: str
    seed: int
    start_ts: float
    end_ts: float
    records: dict[str, list[dict[str, Any]]]
    times: dict[str, list[float]]  # event time (epoch s) of each record, parallel to records
    expected: dict[str, int]
    resolved: dict[str, int] = field(default_factory=dict)
    incidents: list[Incident] = field(default_factory=list)
    ts_format: str = "iso"

    def __iter__(self) -> Iterator[Any]:  # records, expected = generate(...)
        yield self.records
        yield self.expected

    def __len__(self) -> int:
        return sum(len(v) for v in self.records.values())

    def merged(self) -> list[tuple[str, dict[str, Any]]]:
        """All families in one event-time order (ties keep family order)."""
        return [(fam, self.records[fam][i]) for _, _, fam, i in self._merge_index()]

    def _merge_index(self) -> list[tuple[None, None, str, int]]:
        # One stable key sort over the concatenated times (families in the order they were
        # generated) is several times faster than sorting tuples.
        all_times: list[float] = []
        owners: list[tuple[str, int]] = []
        for fam, times in self.times.items():
            all_times.extend(times)
            owners.extend((fam, i) for i in range(len(times)))
        order = sorted(range(len(all_times)), key=all_times.__getitem__)
        return [(None, None, *owners[j]) for j in order]

    def encoded(self, family: str) -> list[tuple[bytes | None, bytes]]:
        """(partition key, JSON value) pairs for one family, in event-time order; the key is
        the first of the contract's key fields that the record fills."""
        dumps = orjson.dumps
        keys = get_contract(family).key
        out: list[tuple[bytes | None, bytes]] = []
        for rec in self.records[family]:
            key = None
            for name in keys:
                value = rec.get(name)
                if value:
                    key = str(value).encode()
                    break
            out.append((key, dumps(rec)))
        return out

    def merged_bytes(self) -> list[tuple[str, bytes | None, bytes]]:
        """(family, key, value) for every record, all families in event-time order."""
        enc = {fam: self.encoded(fam) for fam in self.records}
        return [(fam, *enc[fam][i]) for _, _, fam, i in self._merge_index()]

    def write_jsonl(self, directory: str) -> dict[str, str]:
        """Write ``DIR/<family>.jsonl`` per family; returns {family: path}."""
        os.makedirs(directory, exist_ok=True)
        paths = {}
        for fam, recs in self.records.items():
            path = os.path.join(directory, f"{fam}.jsonl")
            with open(path, "wb") as fh:
                fh.write(b"".join(orjson.dumps(r) + b"\n" for r in recs))
            paths[fam] = path
        return paths

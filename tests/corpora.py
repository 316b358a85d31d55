"""Helpers that write small deterministic corpora for tests."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

WORDS = ("river stone light garden paper engine quiet window orbit signal harbor "
         "forest copper lantern valley thunder").split()


def make_rows(n: int, start: int = 0) -> list[dict]:
    """Deterministic rows with two domains of different sizes and varied lengths."""
    rows = []
    for i in range(start, start + n):
        length = 3 + (i * 7) % 23
        words = [WORDS[(i * 3 + j * 5) % len(WORDS)] for j in range(length)]
        rows.append({"text": " ".join(words) + ".", "domain": "alpha" if i % 3 else "beta",
                     "score": float(i % 10)})
    return rows


def write_parquet(path: Path, rows: list[dict], row_group_size: int = 64) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=row_group_size)
    return path


def write_config(path: Path, **keys) -> Path:
    path.write_text(json.dumps(keys))  # JSON is YAML
    return path

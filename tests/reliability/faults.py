"""Helpers of the reliability suite (see conftest.py).

The reliability suite: tamis used as a new user would, on inputs real corpora have, with bad
configs, faults and kills. Every case states its expected outcome; none may end in a
traceback, and every run that writes is checked by ``tamis verify`` and against an
independent count of its inputs.

The corpus is real text: 240 documents of the demo corpus (four domains) in two Parquet files
of two row groups each.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"


def demo_rows(n: int = 240, start: int = 0) -> pa.Table:
    """``n`` documents of every domain of the demo corpus (id, text, domain)."""
    table = pq.read_table(DEMO / "corpus" / "part-00001.parquet",
                          columns=["id", "text", "domain"])
    step = table.num_rows // (start + n)
    return table.take(pa.array([start + i * step for i in range(n)]))




def config(path: Path, **keys) -> Path:
    path.write_text(json.dumps(keys))  # JSON is YAML
    return path


def sample_config(tmp_path: Path, inputs, output: Path | None = None, **keys) -> Path:
    """A ``tamis sample`` of 100 rows (of any domain) from ``inputs`` into ``output``."""
    keys = {"inputs": [str(i) for i in inputs], "output": str(output or tmp_path / "out"),
            "budget": {"rows": 100}, "seed": 1, **keys}
    return config(tmp_path / "sample.yaml", **keys)


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def shard_hashes(out: Path) -> dict[str, str]:
    return {s["path"]: s["sha256"] for s in manifest(out)["outputs"]["shards"]}


def independent_rows(paths) -> int:
    """Rows in the given Parquet and JSONL files, counted without tamis: Parquet footers, and
    non-blank lines of JSONL (decompressed by suffix)."""
    total = 0
    for p in map(Path, paths):
        if p.stat().st_size == 0:
            continue
        if p.suffix in (".parquet", ".pq"):
            total += pq.ParquetFile(p).metadata.num_rows
        else:
            opener = gzip.open if p.suffix == ".gz" else open
            with opener(p, "rb") as f:
                total += sum(1 for line in f if line.strip())
    return total


def balanced(acc: dict) -> bool:
    return acc["rows_in"] == (acc["rows_kept"] + sum(acc["rows_dropped"].values())
                              + sum(acc["rows_rejected"].values()))


def corrupt_page(path: Path) -> None:
    """Overwrite bytes inside the first page of the text column of ``path`` (snappy), leaving
    the footer whole: reading fails with 'Corrupt snappy compressed data'."""
    column = pq.ParquetFile(path).metadata.row_group(0).column(1)
    start = column.dictionary_page_offset or column.data_page_offset
    data = bytearray(path.read_bytes())
    data[start + 60:start + 400] = b"\xff" * 340
    path.write_bytes(bytes(data))

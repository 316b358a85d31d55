"""Parquet shards, written all or nothing and described for the manifest, and the spill files
in which kept rows wait for their shard.

Spill files (Arrow IPC, LZ4) lie under ``<output>/.spill/`` while a job runs: a selecting step
writes each batch of kept rows where it is made, and only ``(path, batch)`` places travel to the
shard writers; the folder goes once the manifest is written.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from tamis.storage.files import filesystem, join, write_atomically

SPILL = ".spill"

#: Fixed writer settings: the same table always gives the same bytes.
PARQUET_OPTIONS = {"compression": "zstd", "row_group_size": 65536, "write_statistics": True}


def write_table(out_dir: str, rel: str, table: pa.Table, schema: pa.Schema) -> dict:
    """Write ``table`` (cast to ``schema``) to ``out_dir/rel``; return the manifest entry.

    The entry has ``path`` (relative), ``rows``, ``bytes`` and ``sha256``; output shards also
    get ``tokens`` and ``weight_sum`` when the table has ``n_tokens`` and ``weight``.
    """
    table = table.select(schema.names).cast(schema)

    def write(sink) -> None:
        pq.write_table(table, sink, **PARQUET_OPTIONS)

    size, digest = write_atomically(join(out_dir, rel), write)
    entry = {"path": rel, "rows": table.num_rows, "bytes": size, "sha256": digest}
    if "n_tokens" in schema.names:
        entry["tokens"] = int(np.sum(table.column("n_tokens").to_numpy()))
    if "weight" in schema.names:
        entry["weight_sum"] = float(np.sum(table.column("weight").to_numpy()))
    return entry


def shard_name(index: int, count: int) -> str:
    return f"part-{index:05d}-of-{count:05d}.parquet"


def write_spill(out_dir: str, pairs: Sequence[tuple[int, pa.Table]]
                ) -> Iterator[tuple[int, tuple[str, int]]]:
    """Write non-empty ``(shard, table)`` pairs to spill files, one file per schema and one
    record batch per pair; yield ``(shard, (path, batch))`` for each. Files have unique names:
    a retried bundle writes new ones, and only the places a shuffle delivers are read."""
    by_schema: dict[pa.Schema, list[tuple[int, pa.Table]]] = {}
    for shard, table in pairs:
        by_schema.setdefault(table.schema, []).append((shard, table))
    options = pa.ipc.IpcWriteOptions(compression="lz4")
    for schema, group in by_schema.items():
        path = join(out_dir, f"{SPILL}/{uuid.uuid4().hex}.arrow")

        def write(sink, schema=schema, group=group) -> None:
            with pa.ipc.new_file(sink, schema, options=options) as writer:
                for _, table in group:
                    writer.write_batch(table.combine_chunks().to_batches()[0])

        write_atomically(path, write)
        for batch, (shard, _) in enumerate(group):
            yield shard, (path, batch)


def read_spilled(places: Sequence[tuple[str, int]]) -> list[pa.Table]:
    """The spilled batches at ``(path, batch)`` places, each file opened once."""
    by_path: dict[str, list[int]] = {}
    for path, batch in places:
        by_path.setdefault(path, []).append(batch)
    tables = []
    for path in sorted(by_path):
        fs, inner = filesystem(path)
        with fs.open_input_file(inner) as f:
            reader = pa.ipc.open_file(f)
            tables += [pa.Table.from_batches([reader.get_batch(b)])
                       for b in sorted(by_path[path])]
    return tables


def remove_spill(out_dir: str) -> None:
    fs, inner = filesystem(join(out_dir, SPILL))
    if fs.get_file_info(inner).type == pafs.FileType.Directory:
        fs.delete_dir(inner)

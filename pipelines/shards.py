"""Writing one Parquet shard, all or nothing, and describing it for the manifest."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tamis.pipelines.files import join, write_atomically

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

"""Beam stages every job shares: read records, write shards and rejects, write the manifest.

Elements on the hot path are Arrow tables (one per input row group), not dicts: moving rows
between worker processes one at a time costs more than the work itself.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import apache_beam as beam
import pyarrow as pa
import pyarrow.fs as pafs
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from tamis.pipelines import manifest as mf
from tamis.pipelines.files import filesystem, join, sha256_file, write_atomically
from tamis.pipelines.inputs import InputPlan
from tamis.pipelines.records import REJECTS_SCHEMA, ROW, SRC, read_unit
from tamis.pipelines.shards import shard_name, write_table

log = logging.getLogger(__name__)
NAMESPACE = "tamis"


class DataError(ValueError):
    """Data met while the pipeline runs that the job cannot go on with (no negatives left to
    train on, too few documents to cluster). The CLI prints its message, not a traceback."""


class _ReadUnit(beam.DoFn):
    def __init__(self, plan: InputPlan) -> None:
        self._plan = plan

    def setup(self) -> None:
        self._rows = Metrics.counter(NAMESPACE, "rows_read")
        self._rejected = Metrics.counter(NAMESPACE, "rows_rejected")

    def process(self, index: int):
        unit = self._plan.units[index]
        for records, rejects in read_unit(self._plan, unit):
            n_in = records.num_rows + rejects.num_rows
            self._rows.inc(n_in)
            self._rejected.inc(rejects.num_rows)
            yield beam.pvalue.TaggedOutput("rows_in", (unit.file, n_in))
            if rejects.num_rows:
                yield beam.pvalue.TaggedOutput("rejects", (unit.file, rejects))
            if records.num_rows:
                yield records


class ReadRecords(beam.PTransform):
    """Read every unit of an :class:`InputPlan`.

    Returns a dict of PCollections: ``records`` (Arrow tables), ``rejects`` (``(file,
    table)``) and ``rows_in`` (``(file, rows)``, one per unit).
    """

    def __init__(self, plan: InputPlan) -> None:
        super().__init__()
        if not plan.units:
            raise ValueError("the input plan has no unit to read")
        self._plan = plan

    def expand(self, pbegin):
        out = (
            pbegin
            | "Units" >> beam.Create(list(range(len(self._plan.units))))
            | "Spread" >> beam.Reshuffle()
            | "Read" >> beam.ParDo(_ReadUnit(self._plan)).with_outputs(
                "rejects", "rows_in", main="records")
        )
        return {"records": out.records, "rejects": out.rejects, "rows_in": out.rows_in}


class ChecksumInputs(beam.PTransform):
    """``(file index, sha256)`` for every input file, computed in parallel."""

    def __init__(self, plan: InputPlan) -> None:
        super().__init__()
        self._paths = [f.path for f in plan.files]

    def expand(self, pbegin):
        paths = self._paths

        def checksum(index: int) -> tuple[int, str]:
            fs, inner = filesystem(paths[index])
            return index, sha256_file(fs, inner)

        return (
            pbegin
            | "Files" >> beam.Create(list(range(len(paths))))
            | "Spread" >> beam.Reshuffle()
            | "Hash" >> beam.Map(checksum)
        )


#: Kept tables wait here (Arrow IPC, LZ4) until their shard is written; removed with the
#: manifest.
SPILL = ".spill"
SPILL_BYTES = 64 << 20


class _Spill(beam.DoFn):
    """Kept ``(shard, table)`` pairs go to spill files where they are made, about
    ``SPILL_BYTES`` a file, one record batch per pair; only ``(shard, (path, batch))`` travels
    to the shard writers, so the shuffle before writing moves names, not rows. Files have
    unique names: a retried bundle writes new ones, and only what the shuffle delivers is read.
    """

    def __init__(self, out_dir: str) -> None:
        self._out_dir = out_dir

    def start_bundle(self) -> None:
        self._pending: list[tuple[int, pa.Table]] = []
        self._bytes = 0

    def process(self, item):
        self._pending.append(item)
        self._bytes += item[1].nbytes
        if self._bytes >= SPILL_BYTES:
            yield from self._flush()

    def finish_bundle(self):
        for shard, where in self._flush():
            yield WindowedValue((shard, where), MIN_TIMESTAMP, [GlobalWindow()])

    def _flush(self):
        pending, self._pending, self._bytes = self._pending, [], 0
        by_schema: dict[pa.Schema, list[tuple[int, pa.Table]]] = {}
        for shard, table in pending:
            by_schema.setdefault(table.schema, []).append((shard, table))
        options = pa.ipc.IpcWriteOptions(compression="lz4")
        for schema, pairs in by_schema.items():
            path = join(self._out_dir, f"{SPILL}/{uuid.uuid4().hex}.arrow")

            def write(sink, schema=schema, pairs=pairs) -> None:
                with pa.ipc.new_file(sink, schema, options=options) as writer:
                    for _, table in pairs:  # kept tables are never empty
                        writer.write_batch(table.combine_chunks().to_batches()[0])

            write_atomically(path, write)
            for batch, (shard, _) in enumerate(pairs):
                yield shard, (path, batch)


def _read_spilled(places: list[tuple[str, int]]) -> list[pa.Table]:
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


class WriteShards(beam.PTransform):
    """Group ``(shard, table)`` pairs into ``num_shards`` files under ``data/``, each sorted by
    ``sort_by``; every shard is written, even an empty one. Returns manifest entries.

    Each kept table is spilled to a file where it is made; a shard's writer reads its files
    back, sorts and writes the shard. Memory holds one shard, whatever the output's size."""

    def __init__(self, out_dir: str, schema: pa.Schema, num_shards: int,
                 sort_by: list[str]) -> None:
        super().__init__()
        if num_shards < 1:
            raise ValueError(f"num_shards must be >= 1, got {num_shards}")
        self._out_dir, self._schema = out_dir, schema
        self._num_shards, self._sort_by = num_shards, sort_by

    def expand(self, pairs):
        out_dir, schema, n, sort_by = self._out_dir, self._schema, self._num_shards, self._sort_by

        def write(item) -> dict:
            index, places = item
            parts = _read_spilled([w for w in places if w is not None])
            table = (pa.concat_tables(parts, promote_options="default") if parts
                     else schema.empty_table())
            if parts:
                table = table.sort_by([(c, "ascending") for c in sort_by])
            # The spill files stay until the manifest is written: a retried writer needs them.
            return write_table(out_dir, f"{mf.DATA}/{shard_name(index, n)}", table, schema)

        every = pairs.pipeline | "ShardIndex" >> beam.Create([(i, None) for i in range(n)])
        spilled = pairs | "Spill" >> beam.ParDo(_Spill(out_dir))
        return (
            (spilled, every)
            | "WithEmpty" >> beam.Flatten()
            | "Group" >> beam.GroupByKey()
            | "Write" >> beam.Map(write)
        )


class WriteRejects(beam.PTransform):
    """One rejects shard per input file that had rejected rows, rows in input order.
    Returns manifest entries, each with its count of rows per ``reasons``."""

    def __init__(self, out_dir: str) -> None:
        super().__init__()
        self._out_dir = out_dir

    def expand(self, pairs):
        out_dir = self._out_dir

        def write(item) -> dict:
            index, tables = item
            table = pa.concat_tables(list(tables)).sort_by("row")
            entry = write_table(out_dir, f"{mf.REJECTS}/part-{index:05d}.parquet", table,
                                REJECTS_SCHEMA)
            reasons = table.column("reason").value_counts().to_pylist()
            entry["reasons"] = {r["values"]: r["counts"] for r in reasons}
            return entry

        return pairs | "Group" >> beam.GroupByKey() | "Write" >> beam.Map(write)


class WriteManifest(beam.PTransform):
    """Write ``manifest.json`` once every shard is written, from side inputs.

    ``build(**side_inputs)`` returns the manifest dict; the accounting is checked before the
    file is written, so a job whose counts do not add up fails instead of lying.
    """

    def __init__(self, out_dir: str, build: Callable[..., dict]) -> None:
        super().__init__()
        self._out_dir, self._build = out_dir, build

    def expand(self, side_inputs: dict):
        out_dir, build = self._out_dir, self._build

        def finish(_, **sides) -> str:
            manifest = build(**sides)
            problem = mf.accounting_problem(manifest["accounting"])
            if problem:
                raise RuntimeError(f"internal error, rows were lost: {problem}")
            mf.write_manifest(out_dir, manifest)
            fs, inner = filesystem(join(out_dir, SPILL))
            if fs.get_file_info(inner).type == pafs.FileType.Directory:
                fs.delete_dir(inner)
            return out_dir

        sides = {k: beam.pvalue.AsList(v) for k, v in side_inputs.items()}
        pipeline = next(iter(side_inputs.values())).pipeline
        return pipeline | "Once" >> beam.Create([None]) | "Write" >> beam.Map(finish, **sides)


def write_outputs(pipeline: beam.Pipeline, plan: InputPlan, out_dir: str, schema: pa.Schema,
                  num_shards: int, kept, rows_in, rejects, build: Callable[..., dict],
                  **sides) -> None:
    """The end every selection job shares: ``kept`` ``(shard, table)`` pairs into shards (rows
    sorted by their key), every rejects PCollection in ``rejects`` into rejects shards, the
    inputs' checksums, then the manifest from ``build(checksums, rows_in, shards, rejects,
    **sides)``."""
    shards = kept | "WriteShards" >> WriteShards(out_dir, schema, num_shards,
                                                 ["__key", "id", SRC, ROW])
    written = (tuple(rejects) | "AllRejects" >> beam.Flatten()
               | "WriteRejects" >> WriteRejects(out_dir))
    checksums = pipeline | "ChecksumInputs" >> ChecksumInputs(plan)
    _ = ({"checksums": checksums, "rows_in": rows_in, "shards": shards, "rejects": written,
          **sides} | "WriteManifest" >> WriteManifest(out_dir, build))


def manifest_base(plan: InputPlan, header: dict, checksums, rows_in, shards,
                  rejects) -> tuple[dict, list[int]]:
    """What every text job's manifest holds, and the rows read per input file.

    The manifest has the header, versions, the inputs with their rows and checksums, the
    sorted shard and rejects entries, and ``rows_in`` / ``rows_rejected`` of the accounting;
    jobs add ``rows_kept``, ``rows_dropped`` and their own sections."""
    rows_per_file = [0] * len(plan.files)
    for f, n in rows_in:
        rows_per_file[f] += n
    sha = dict(checksums)
    rejected: dict[str, int] = {}
    for entry in rejects:
        for reason, n in entry["reasons"].items():
            rejected[reason] = rejected.get(reason, 0) + n
    return {
        **{k: v for k, v in header.items() if k not in ("warnings", "selector")},
        "schema_version": mf.SCHEMA_VERSION,
        mf.TIMESTAMP_FIELD: datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": mf.versions(),
        "inputs": [{"path": f.path, "rel": f.rel, "format": f.format, "bytes": f.bytes,
                    "rows": rows_per_file[i], "sha256": sha[i]}
                   for i, f in enumerate(plan.files)],
        "outputs": {
            "shards": sorted(shards, key=lambda e: e["path"]),
            "rejects": sorted(({k: v for k, v in e.items() if k != "reasons"} for e in rejects),
                              key=lambda e: e["path"]),
        },
        "accounting": {"rows_in": sum(rows_per_file), "rows_rejected": rejected},
        "warnings": list(header.get("warnings", [])),
    }, rows_per_file


#: Salts the (seed, id) hash that orders rows in shards, so that their order is independent of
#: the (seed, id) uniforms that decided which rows were kept.
ORDER_SALT = 0x9E3779B97F4A7C15

"""Beam stages that write: shards (through spill files), rejects, and the manifest last.

Kept rows are spilled to Arrow files where they are made; only their places travel to the
shard writers, so the step that sorts rows into shards holds one shard in memory, not the
whole output. The manifest is written once every shard is, from side inputs, and only if its
accounting adds up.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import apache_beam as beam
import pyarrow as pa
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from tamis.pipelines.read import CENSUS, CENSUS_EXACT, ChecksumInputs
from tamis.storage import manifest as mf
from tamis.storage.errors import DataError
from tamis.storage.inputs import InputPlan
from tamis.storage.records import REJECTS_SCHEMA, ROW, SRC
from tamis.storage.shards import (
    read_spilled,
    remove_spill,
    shard_name,
    write_spill,
    write_table,
)

#: Kept tables are spilled about this much at a time.
SPILL_BYTES = 64 << 20


class _Spill(beam.DoFn):
    """Kept ``(shard, table)`` pairs go to spill files where they are made, about
    ``SPILL_BYTES`` a file; only ``(shard, (path, batch))`` travels to the shard writers, so
    the shuffle before writing moves names, not rows."""

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
        return write_spill(self._out_dir, pending)


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
            parts = read_spilled([w for w in places if w is not None])
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
            remove_spill(out_dir)
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


def manifest_base(plan: InputPlan, header: mf.Header, checksums, rows_in, shards,
                  rejects) -> tuple[dict, list[int]]:
    """What every text job's manifest holds, and the rows read per input file.

    The manifest has the header, versions, the inputs with their rows and checksums, the
    sorted shard and rejects entries, and ``rows_in`` / ``rows_rejected`` of the accounting;
    jobs add ``rows_kept``, ``rows_dropped`` and their own sections."""
    rows_per_file = [0] * len(plan.files)
    census = None
    for f, n in rows_in:
        if f == CENSUS:
            census = n
        else:
            rows_per_file[f] += n
    sha = dict(checksums)
    rejected: dict[str, int] = {}
    for entry in rejects:
        for reason, n in entry["reasons"].items():
            rejected[reason] = rejected.get(reason, 0) + n
    return {
        **header.opening(),
        "schema_version": mf.SCHEMA_VERSION,
        mf.TIMESTAMP_FIELD: datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": mf.versions(),
        "inputs": [{"path": f.path, "rel": f.rel, "format": f.format, "bytes": f.bytes,
                    "rows": rows_per_file[i], "sha256": sha[i]}
                   for i, f in enumerate(plan.files)],
        "skipped": [s.entry() for s in plan.skipped],
        "outputs": {
            "shards": sorted(shards, key=lambda e: e["path"]),
            "rejects": sorted(({k: v for k, v in e.items() if k != "reasons"} for e in rejects),
                              key=lambda e: e["path"]),
        },
        "accounting": {"rows_in": sum(rows_per_file), "rows_rejected": rejected},
        "warnings": list(header.warnings) + _read_warnings(plan, census, rejected),
        **({} if census is None else {"duplicate_ids": _duplicates(plan, census)}),
    }, rows_per_file


def _duplicates(plan: InputPlan, census: dict) -> dict:
    """The manifest's ``duplicate_ids``; stops the job when the plan says so."""
    n = census["duplicate_rows"]
    # An estimate (past CENSUS_EXACT ids) is trusted above three standard errors.
    noise = 0 if census["exact"] else 3 * census["rows"] / CENSUS_EXACT ** 0.5
    if plan.on_duplicate_id == "stop" and n > noise:
        raise DataError(f"{n:,} rows{'' if census['exact'] else ' (estimated)'} repeat an id "
                        f"seen before in the inputs (on_duplicate_id: stop); deduplicate "
                        f"them, or set on_duplicate_id: keep or reject")
    return {"rows": n, "exact": census["exact"], "policy": plan.on_duplicate_id}


def _read_warnings(plan: InputPlan, census: dict | None, rejected: dict) -> list[str]:
    out = []
    if census is not None and census["duplicate_rows"]:
        n = census["duplicate_rows"]
        how = ("rejected as duplicate_id" if plan.on_duplicate_id == "reject" else
               "kept: every copy is drawn or dropped with the first, since draws are keyed "
               "on (seed, id); on_duplicate_id: reject keeps only the first")
        out.append(f"{n:,} rows{'' if census['exact'] else ' (estimated)'} repeat an id seen "
                   f"before in the inputs: {how}")
    if rejected.get("unreadable"):
        out.append(f"{rejected['unreadable']:,} rows could not be decoded and were rejected "
                   f"as unreadable (on_corrupt: skip); the rejects name their files and rows")
    return out

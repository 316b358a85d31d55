"""Beam stages that read: records of an input plan, input checksums, cached vectors.

Elements on the hot path are Arrow tables (one per read batch of an input unit), not dicts:
moving rows between worker processes one at a time costs more than the work itself.
"""

from __future__ import annotations

import json

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.metrics import Metrics

from tamis.selectors.sampling import row_keys
from tamis.storage.cache import Cache, read_documents
from tamis.storage.errors import CacheError
from tamis.storage.files import filesystem, sha256_file
from tamis.storage.inputs import InputPlan
from tamis.storage.records import REJECTS_SCHEMA, ROW, SRC, read_unit

#: The namespace of every Beam counter tamis keeps.
NAMESPACE = "tamis"


class _ReadUnit(beam.DoFn):
    def __init__(self, plan: InputPlan) -> None:
        self._plan = plan

    def setup(self) -> None:
        self._rows = Metrics.counter(NAMESPACE, "rows_read")
        self._rejected = Metrics.counter(NAMESPACE, "rows_rejected")

    def process(self, index: int, duplicates=None):
        unit = self._plan.units[index]
        drop = None if duplicates is None else duplicates.get(unit.file)
        for records, rejects in read_unit(self._plan, unit):
            n_in = records.num_rows + rejects.num_rows
            if drop is not None and records.num_rows:
                records, copies = reject_duplicates(self._plan, records, drop)
                if copies.num_rows:
                    rejects = pa.concat_tables([rejects, copies])
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
    table)``) and ``rows_in`` (``(file, rows)``, one per unit). With ``census`` (the job's
    main read), ``rows_in`` also holds one ``(CENSUS, counts)`` item: how many rows repeat an
    id (:class:`IdCensus`), which the manifest reports. When the plan rejects duplicate ids,
    every read of it drops the same copies (found once per pipeline, :class:`FindDuplicates`).
    """

    def __init__(self, plan: InputPlan, census: bool = False) -> None:
        super().__init__()
        if not plan.units:
            raise ValueError("the input plan has no unit to read")
        self._plan, self._census = plan, census

    def expand(self, pbegin):
        plan = self._plan
        sides = []
        if plan.id_column is not None and plan.on_duplicate_id == "reject":
            sides = [beam.pvalue.AsSingleton(_duplicates_of(pbegin.pipeline, plan))]
        out = (
            pbegin
            | "Units" >> beam.Create(list(range(len(plan.units))))
            | "Spread" >> beam.Reshuffle()
            | "Read" >> beam.ParDo(_ReadUnit(plan), *sides).with_outputs(
                "rejects", "rows_in", main="records")
        )
        rows_in = out.rows_in
        if self._census and plan.id_column is not None:
            census = (out.records | "IdHashes" >> beam.Map(_id_hashes)
                      | "CountIds" >> beam.CombineGlobally(IdCensus())
                      | "Tag" >> beam.Map(lambda counts: (CENSUS, counts)))
            rows_in = (rows_in, census) | "WithCensus" >> beam.Flatten()
        return {"records": out.records, "rejects": out.rejects, "rows_in": rows_in}


#: The key of the id census among a main read's ``rows_in`` items.
CENSUS = "ids"
#: Distinct id hashes an :class:`IdCensus` keeps exactly; beyond, the smallest this many (a
#: k-minimum-values sketch, relative error about 1/sqrt(CENSUS_EXACT) on the distinct count).
CENSUS_EXACT = 1 << 22
_CENSUS_SEED = 0x1D5


def _id_hashes(table: pa.Table) -> np.ndarray:
    return row_keys(table.column("id").to_pylist(), _CENSUS_SEED)


class IdCensus(beam.CombineFn):
    """How many rows repeat an id seen before: exact up to :data:`CENSUS_EXACT` distinct ids
    (64-bit hashes), estimated beyond. A batch's hashes wait in a buffer that is merged into
    the sorted set once it is as large as the set (or 1M hashes), so merging costs O(n log n)
    in all, not O(set) per batch. Memory stays within a few times CENSUS_EXACT hashes."""

    def create_accumulator(self):
        return [0, np.zeros(0, np.uint64), True, []]  # rows, sorted hashes, exact, buffer

    def add_input(self, acc, hashes):
        acc[0] += int(hashes.size)
        acc[3].append(hashes)
        if sum(h.size for h in acc[3]) >= max(1 << 20, acc[1].size):
            acc = self._compact(acc)
        return acc

    def merge_accumulators(self, accumulators):
        out = self.create_accumulator()
        for acc in accumulators:
            out = self._merge(self._compact(out), self._compact(acc))
        return out

    @classmethod
    def _compact(cls, acc):
        if not acc[3]:
            return acc
        pending = _sorted_unique(np.concatenate(acc[3]))
        merged = cls._merge([acc[0], acc[1], acc[2], []], [0, pending, True, []])
        return merged

    @staticmethod
    def _merge(a, b):
        rows = a[0] + b[0]
        kept = _sorted_unique(np.concatenate([a[1], b[1]]))
        exact = a[2] and b[2]
        if not exact:  # a sketch keeps hashes below its k-th smallest only
            bound = min(x[1][-1] for x in (a, b) if not x[2] and x[1].size)
            kept = kept[kept <= bound]
        if kept.size > CENSUS_EXACT:
            kept, exact = kept[:CENSUS_EXACT], False
        return [rows, kept, exact, []]

    def extract_output(self, acc) -> dict:
        rows, kept, exact, _ = self._compact(acc)
        if exact:
            distinct = int(kept.size)
        else:
            distinct = int(round((kept.size - 1) / (float(kept[-1]) / 2.0 ** 64)))
        return {"rows": rows, "duplicate_rows": max(0, rows - distinct), "exact": bool(exact)}


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values by one sort (NumPy's ``unique`` hashes, much slower here)."""
    ordered = np.sort(values)
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]] if ordered.size else ordered


def _duplicates_of(pipeline, plan: InputPlan):
    """The copies to reject of a plan, found once per pipeline however often it is read."""
    found = pipeline.__dict__.setdefault("_tamis_duplicates", {})
    if id(plan) not in found:
        found[id(plan)] = (pipeline | f"FindDuplicateIds{len(found) or ''}"
                           >> FindDuplicates(plan))
    return found[id(plan)]


class FindDuplicates(beam.PTransform):
    """``{file: {row, ...}}``: every copy of an id after its first (by input file, then row),
    from one read of the plan."""

    def __init__(self, plan: InputPlan) -> None:
        super().__init__()
        self._plan = plan

    def expand(self, pbegin):
        rels = [f.rel for f in self._plan.files]

        def places(table: pa.Table):
            src, row = table.column(SRC).to_numpy(), table.column(ROW).to_numpy()
            for rid, s, r in zip(table.column("id").to_pylist(), src, row, strict=True):
                yield rid, (rels[int(s)], int(s), int(r))

        def later_copies(item):
            _, where = item
            if len(where) > 1:
                for _, s, r in sorted(where)[1:]:
                    yield s, r

        def collect(pairs) -> dict:
            out: dict[int, set[int]] = {}
            for s, r in pairs:
                out.setdefault(s, set()).add(r)
            return out

        plain = _plain(self._plan)
        return (
            (pbegin | "Read" >> ReadRecords(plain))["records"]
            | "Places" >> beam.FlatMap(places)
            | "ById" >> beam.GroupByKey()
            | "LaterCopies" >> beam.FlatMap(later_copies)
            | "Collect" >> beam.combiners.ToList()
            | "ByFile" >> beam.Map(collect)
        )


def _plain(plan: InputPlan) -> InputPlan:
    import dataclasses

    return dataclasses.replace(plan, on_duplicate_id="keep")


def reject_duplicates(plan: InputPlan, records: pa.Table,
                      drop: set[int]) -> tuple[pa.Table, pa.Table]:
    """Records without the rows in ``drop`` (by row index), and those rows as rejects."""
    rows = records.column(ROW).to_numpy()
    copy = np.fromiter((int(r) in drop for r in rows), dtype=bool, count=rows.size)
    if not copy.any():
        return records, pa.Table.from_pylist([], schema=REJECTS_SCHEMA)
    f = plan.files[int(records.column(SRC)[0].as_py())]
    shown = records.filter(pa.array(copy)).drop_columns(
        [c for c in records.column_names if c.startswith("__") or c == "n_tokens"])
    rejected = [{"source": f.rel, "row": int(r), "id": rec.get("id"), "field": "id",
                 "reason": "duplicate_id",
                 "record": json.dumps(rec, default=str, ensure_ascii=False)}
                for r, rec in zip(rows[copy], shown.to_pylist(), strict=True)]
    return records.filter(pa.array(~copy)), pa.Table.from_pylist(rejected,
                                                                schema=REJECTS_SCHEMA)


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


class ReadDocumentVectors(beam.PTransform):
    """Every shard of a cache → ``(shard path, ids, vectors, tokens)``, shards in parallel."""

    def __init__(self, cache: Cache) -> None:
        super().__init__()
        self._paths = [cache.shard_path(e) for e in cache.shards]
        if not self._paths:
            raise CacheError(f"{cache.path} holds no shard")

    def expand(self, pbegin):
        return (
            pbegin
            | "Shards" >> beam.Create(self._paths)
            | "Spread" >> beam.Reshuffle()
            | "Read" >> beam.Map(lambda p: (p, *read_documents(p)))
        )

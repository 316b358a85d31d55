"""Beam stages that read: records of an input plan, input checksums, cached vectors.

Elements on the hot path are Arrow tables (one per read batch of an input unit), not dicts:
moving rows between worker processes one at a time costs more than the work itself.
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.metrics import Metrics

from tamis.storage.cache import Cache, read_documents
from tamis.storage.errors import CacheError
from tamis.storage.files import filesystem, sha256_file
from tamis.storage.inputs import InputPlan
from tamis.storage.records import read_unit

#: The namespace of every Beam counter tamis keeps.
NAMESPACE = "tamis"


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

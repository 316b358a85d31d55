"""The selection tail on Beam's test runner: a row's fate, its counters, weights composed with
an earlier selection's, and the tallies the manifest adds up."""

from __future__ import annotations

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from tamis.pipelines.tail import Fate, SelectionSpec, SelectionTail, Tally, sum_tally
from tamis.storage.inputs import IN_SAMPLES, IN_WEIGHT
from tamis.storage.manifest import Header
from tamis.storage.records import ROW, SRC


def spec(num_shards: int = 2) -> SelectionSpec:
    return SelectionSpec(inputs=None, out_dir="unused", seed=3, num_shards=num_shards,
                         header=Header("test", {}, "sha256:0", 3))


def batch(n: int, src: int = 0, upstream: bool = False) -> pa.Table:
    table = pa.table({"id": [f"{src}-{i}" for i in range(n)],
                      "n_tokens": pa.array(np.arange(1, n + 1), pa.int64()),
                      SRC: pa.array([src] * n, pa.int32()), ROW: pa.array(range(n), pa.int64())})
    if upstream:  # read from an earlier selection: its weights and draws travel along
        table = table.append_column(IN_WEIGHT, pa.array([2.0] * n))
        table = table.append_column(IN_SAMPLES, pa.array([3] * n, pa.int64()))
    return table


class _Keep(beam.DoFn):
    """Keeps even rows (drawn twice, weight 0.5), drops the others as not_sampled."""

    def __init__(self) -> None:
        self._tail = SelectionTail(spec())

    def setup(self) -> None:
        self._tail.setup()

    def process(self, table: pa.Table):
        keep = np.arange(table.num_rows) % 2 == 0
        yield from self._tail.emit(table, Fate(keep, {"not_sampled": ~keep}, weight=0.5,
                                               n_samples=2, columns={"score": np.ones(
                                                   int(keep.sum()))}))


def test_kept_rows_drops_and_tallies():
    p = test_pipeline.TestPipeline()
    out = (p | beam.Create([batch(5), batch(4, src=1, upstream=True)])
           | beam.ParDo(_Keep()).with_outputs("tally", main="kept"))
    rows = out.kept | "Rows" >> beam.FlatMap(lambda item: list(zip(
        item[1].column("id").to_pylist(), item[1].column("weight").to_pylist(),
        item[1].column("n_samples").to_pylist(), item[1].column("score").to_pylist(),
        strict=True)))
    shards = out.kept | "Shards" >> beam.Map(lambda item: item[0] in (0, 1))
    expected = [("0-0", 0.5, 2, 1.0), ("0-2", 0.5, 2, 1.0), ("0-4", 0.5, 2, 1.0),
                ("1-0", 1.0, 6, 1.0), ("1-2", 1.0, 6, 1.0)]  # upstream: times 2.0 and 3
    assert_that(rows, equal_to(expected), label="kept")
    assert_that(shards | beam.Distinct(), equal_to([True]), label="shards")
    sums = out.tally | beam.combiners.ToList() | beam.Map(sum_tally)
    assert_that(sums, equal_to([{
        "dropped": {"not_sampled": [4, 2 + 4 + 2 + 4]},
        "source": {0: [3, 1 + 3 + 5], 1: [2, 1 + 3]},
        "drawn": {None: [3 * 2 + 2 * 6, 2 * 9 + 6 * 4]},
        "max_draws": {None: [6, 0]}}]), label="tally")
    result = p.run()
    result.wait_until_finish()
    counters = {c.key.metric.name: c.committed for c in
                result.metrics().query(MetricsFilter().with_namespace("tamis"))["counters"]}
    assert counters["rows_kept"] == 5 and counters["rows_dropped_not_sampled"] == 4


def test_a_row_without_exactly_one_fate_is_an_internal_error():
    tail = SelectionTail(spec())
    tail.setup()
    keep = np.array([True, False, False])
    with pytest.raises(RuntimeError, match="neither kept nor dropped once"):
        list(tail.emit(batch(3), Fate(keep, {"not_sampled": np.array([False, True, False])})))
    with pytest.raises(RuntimeError, match="neither kept nor dropped once"):
        list(tail.emit(batch(3), Fate(keep, {"a": ~keep, "b": ~keep})))


def test_tallies_sum_and_keep_the_largest_draw():
    items = [Tally("dropped", "x", 2, 10), Tally("dropped", "x", 1, 5),
             Tally("max_draws", None, 3, 0), Tally("max_draws", None, 7, 0)]
    assert sum_tally(items) == {"dropped": {"x": [3, 15]}, "max_draws": {None: [7, 0]}}

"""The reading stages on Beam's test runner: every row read once, into records or rejects."""

from __future__ import annotations

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from tamis.pipelines.read import ChecksumInputs, ReadDocumentVectors, ReadRecords
from tamis.storage.cache import Cache
from tamis.storage.errors import CacheError
from tamis.storage.files import filesystem, sha256_file
from tamis.storage.inputs import plan_inputs


@pytest.fixture
def plan(tmp_path):
    rows = [{"id": f"r{i}", "text": f"row number {i}"} for i in range(25)]
    rows[3]["text"], rows[7]["text"], rows[20]["id"] = None, "  ", None
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "a.parquet", row_group_size=10)
    lines = ['{"id": "j1", "text": "fine"}', "{not json", '{"id": "j2", "text": 3}']
    (tmp_path / "b.jsonl").write_text("\n".join(lines) + "\n")
    return plan_inputs([str(tmp_path)], "text")


def test_read_records_puts_every_row_in_records_or_rejects(plan):
    p = test_pipeline.TestPipeline()
    read = p | ReadRecords(plan)
    ids = read["records"] | "Ids" >> beam.FlatMap(lambda t: t.column("id").to_pylist())
    reasons = read["rejects"] | "Reasons" >> beam.FlatMap(
        lambda item: [(item[0], r) for r in item[1].column("reason").to_pylist()])
    rows_in = read["rows_in"] | beam.CombinePerKey(sum)
    good = [f"r{i}" for i in range(25) if i not in (3, 7, 20)] + ["j1"]
    assert_that(ids, equal_to(good), label="records")
    assert_that(reasons, equal_to([(0, "null_text"), (0, "empty_text"), (0, "null_id"),
                                   (1, "invalid_json"), (1, "non_string_text")]),
                label="rejects")
    assert_that(rows_in, equal_to([(0, 25), (1, 3)]), label="rows_in")
    p.run().wait_until_finish()


def test_checksums_are_the_files_sha256(plan):
    expected = []
    for i, f in enumerate(plan.files):
        fs, inner = filesystem(f.path)
        expected.append((i, sha256_file(fs, inner)))
    with test_pipeline.TestPipeline() as p:
        assert_that(p | ChecksumInputs(plan), equal_to(expected))


def test_a_cache_without_shards_is_refused_when_the_stage_is_made():
    empty = Cache("somewhere", {"job": "embed", "model": {"dim": 4},
                                "outputs": {"shards": []}})
    with pytest.raises(CacheError, match="somewhere holds no shard"):
        ReadDocumentVectors(empty)


def _census(batches, exact_limit=None, monkeypatch=None):
    from tamis.pipelines import read

    if exact_limit is not None:
        monkeypatch.setattr(read, "CENSUS_EXACT", exact_limit)
    fn = read.IdCensus()
    halves = [fn.create_accumulator(), fn.create_accumulator()]
    for i, batch in enumerate(batches):  # two workers, merged at the end
        halves[i % 2] = fn.add_input(halves[i % 2], batch)
    return fn.extract_output(fn.merge_accumulators(halves))


def test_the_id_census_counts_copies_exactly_then_estimates(monkeypatch):
    import numpy as np

    rng = np.random.default_rng(0)
    distinct = rng.integers(0, 2**64, 20_000, dtype=np.uint64)  # hashes span all 64 bits
    copies = distinct[:2_000]  # each seen twice, in other batches
    batches = np.array_split(np.concatenate([distinct, copies, copies[:500]]), 37)
    assert _census(batches) == {"rows": 22_500, "duplicate_rows": 2_500, "exact": True}
    sketch = _census(batches, exact_limit=4096, monkeypatch=monkeypatch)
    assert not sketch["exact"] and sketch["rows"] == 22_500
    assert abs(sketch["duplicate_rows"] - 2_500) < 3 * 22_500 / 4096 ** 0.5  # its stated bound

"""The streaming top-by-budget stage on Beam's test runner against the in-memory reference,
with ties, ineligible rows, and a budget over the pool."""

from __future__ import annotations

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pytest
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from tamis.pipelines.topk import COSINE, KEY, N_BINS, RELATIVE, in_top, top_by_budget
from tamis.selectors.precision import quantize, tie_keys
from tamis.selectors.sampling import top_by_budget as reference
from tamis.storage.records import ROW, SRC


def batches(keys: np.ndarray, sizes: np.ndarray, per: int = 37) -> list[pa.Table]:
    ids = [f"d{i}" for i in range(len(keys))]
    return [pa.table({"id": ids[a:a + per], KEY: pa.array(keys[a:a + per], pa.float64()),
                      "n_tokens": pa.array(sizes[a:a + per], pa.int64()),
                      SRC: pa.array([0] * len(ids[a:a + per]), pa.int32()),
                      ROW: pa.array(range(a, a + len(ids[a:a + per])), pa.int64())})
            for a in range(0, len(keys), per)]


def selected(keys: np.ndarray, sizes: np.ndarray, budget: int, binning) -> list[str]:
    tables = batches(keys, sizes)
    with test_pipeline.TestPipeline() as p:
        cut, taken = top_by_budget(lambda label: p | label >> beam.Create(tables), budget,
                                   seed=9, binning=binning)
        kept = (p | "Final" >> beam.Create(tables)
                | beam.FlatMap(lambda t, c, k: [i for i, keep in zip(
                    t.column("id").to_pylist(), in_top(t, c, k, binning), strict=True) if keep],
                    beam.pvalue.AsSingleton(cut), beam.pvalue.AsSingleton(taken)))
        ids = [f"d{i}" for i in reference(keys, sizes, budget, tie_keys(
            [f"d{i}" for i in range(len(keys))], 9))]
        assert_that(kept, equal_to(ids))
    return ids


@pytest.mark.parametrize("budget", [50, 2_000, 10**9])
def test_log_weight_keys_with_ties_match_the_reference(budget):
    rng = np.random.default_rng(0)
    keys = quantize(np.repeat(rng.normal(0, 30, 150), 2))  # every key twice: ties
    keys[::17] = -np.inf  # rows that may not be selected
    chosen = selected(keys, rng.integers(1, 40, len(keys)), budget, RELATIVE)
    assert len(chosen) < len(keys)


def test_cosine_keys_in_one_bin_are_resolved_by_the_tie_key():
    keys = quantize(np.full(200, 0.4))  # one bin, one value: only tie keys decide
    chosen = selected(keys, np.full(200, 5), 101, COSINE)
    assert len(chosen) == 20


def test_bins_are_monotone_and_exact():
    keys = quantize(np.sort(np.r_[np.linspace(-1, 1, 5001), -1e6, 3e9]))
    for binning in (RELATIVE, COSINE):
        bins = binning.bins(keys)
        assert np.all(np.diff(bins) <= 0) and bins.max() < N_BINS
    assert RELATIVE.bins(np.array([-np.inf]))[0] == N_BINS

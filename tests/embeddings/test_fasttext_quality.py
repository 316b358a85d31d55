"""The real fastText (fasttext-numpy2) on real demo text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from tamis.embeddings.fasttext_quality import FastTextQuality, one_line

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"


@pytest.fixture(scope="module")
def texts():
    pool = pq.read_table(DEMO / "corpus" / "part-00000.parquet")
    hq = pq.read_table(DEMO / "specialist").column("text").to_pylist()
    other = pool.filter(pc.not_equal(pool.column("domain"), "python_docs"))
    docs = pool.filter(pc.equal(pool.column("domain"), "python_docs"))
    return hq, other.column("text").to_pylist(), docs.column("text").to_pylist()


def test_one_line():
    assert one_line("a\nb\r\n  c\td ") == "a b c d"


@pytest.mark.slow
def test_fasttext_separates_real_classes_deterministically(texts, tmp_path):
    hq, other, docs = texts
    # 750 training lines are far fewer than DCLM's 400k: more epochs to learn anything
    model = FastTextQuality(seed=3, epoch=25).fit(hq, other[0:1800:3])  # every domain
    held_docs, held_other = model.score(docs[:200]), model.score(other[1:1800:9])
    # AUC on documents the model never saw
    auc = np.mean(held_docs[:, None] > held_other[None, :])
    assert auc > 0.9
    again = FastTextQuality(seed=3, epoch=25).fit(hq, other[0:1800:3])
    assert np.array_equal(again.score(docs[:50]), held_docs[:50])
    model.save(str(tmp_path / "q.bin"))
    assert np.array_equal(FastTextQuality.load(str(tmp_path / "q.bin")).score(docs[:50]),
                          held_docs[:50])
    with pytest.raises(ValueError, match="needs positives and negatives, got 0 and 1"):
        FastTextQuality().fit([], ["x"])

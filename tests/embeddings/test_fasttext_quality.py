"""The real fastText (fasttext-numpy2) on real demo text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from tamis.embeddings.fasttext_quality import AUTO_EPOCHS, FastTextQuality, one_line
from tamis.selectors.quality import auc

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"

#: What the model of ``test_fasttext_separates_real_classes_deterministically`` scored on
#: ``docs[:6] + other[1:60:9]`` before ``epoch="auto"`` and ``bucket`` existed: a fixed epoch
#: must keep training exactly the model it trained.
BEFORE = [0.5279971957206726, 0.8748779296875, 0.40586328506469727, 0.5575732588768005,
          0.7624899744987488, 0.253909170627594, 0.0306435227394104, 0.024614691734313965,
          0.029728055000305176, 0.010617434978485107, 0.001843571662902832, 0.012509524822235107,
          0.06069213151931763]


@pytest.fixture(scope="module")
def texts():
    pool = pq.read_table(DEMO / "corpus" / "part-00000.parquet")
    hq = pq.read_table(DEMO / "specialist").column("text").to_pylist()
    other = pool.filter(pc.not_equal(pool.column("domain"), "python_docs"))
    docs = pool.filter(pc.equal(pool.column("domain"), "python_docs"))
    return hq, other.column("text").to_pylist(), docs.column("text").to_pylist()


def test_one_line():
    assert one_line("a\nb\r\n  c\td ") == "a b c d"


def spread(scores: np.ndarray) -> float:
    """How far apart the scores lie: their 0.5% to 99.5% quantile range."""
    low, high = np.quantile(scores, [0.005, 0.995])
    return float(high - low)


@pytest.mark.slow
def test_fasttext_separates_real_classes_deterministically(texts, tmp_path):
    hq, other, docs = texts
    # 750 training lines are far fewer than DCLM's 400k: more epochs to learn anything
    model = FastTextQuality(seed=3, epoch=25).fit(hq, other[0:1800:3])  # every domain
    assert model.epoch_ == 25 and model.lr_ == 0.1 and model.tuning_ is None
    assert np.allclose(model.score(docs[:6] + other[1:60:9]), BEFORE, rtol=0, atol=1e-6)
    held_docs, held_other = model.score(docs[:200]), model.score(other[1:1800:9])
    # AUC on documents the model never saw
    auc = np.mean(held_docs[:, None] > held_other[None, :])
    assert auc > 0.9
    # the arguments by position, as configuration sections pass them
    again = FastTextQuality(0.1, 100, 25, 2, seed=3).fit(hq, other[0:1800:3])
    assert np.array_equal(again.score(docs[:50]), held_docs[:50])
    model.save(str(tmp_path / "q.bin"))
    loaded = FastTextQuality.load(str(tmp_path / "q.bin"))
    assert np.array_equal(loaded.score(docs[:50]), held_docs[:50])
    assert loaded.epoch_ == 25 and loaded.bucket == 2_000_000 and loaded.lr_ is None
    with pytest.raises(ValueError, match="needs positives and negatives, got 0 and 1"):
        FastTextQuality().fit([], ["x"])


@pytest.mark.slow
def test_auto_epochs_spread_the_scores_and_are_deterministic(texts):
    hq, other, docs = texts
    train_other, unseen = other[0:1800:3], docs[:200] + other[1:1800:9]
    truth = np.r_[np.ones(200), np.zeros(len(other[1:1800:9]))]
    dclm = FastTextQuality(epoch=5, bucket=1 << 18).fit(hq, train_other)
    assert spread(dclm.score(unseen)) < 0.1  # fastText's 5 epochs: every score near 0.5

    model = FastTextQuality(bucket=1 << 18).fit(hq, train_other)
    assert model.epoch == "auto" and model.model_.f.getArgs().bucket == 1 << 18
    tuning = model.tuning_
    assert [c["epoch"] for c in tuning["candidates"]] == list(AUTO_EPOCHS)
    assert all(c["lr"] == 0.1 for c in tuning["candidates"]) and model.lr_ == 0.1
    assert 20 < tuning["held_positives"] < 40 and 90 < tuning["held_negatives"] < 150
    best = min(tuning["candidates"], key=lambda c: (c["log_loss"], c["epoch"]))
    assert model.epoch_ == best["epoch"] > 5 and model.model_.f.getArgs().epoch == model.epoch_
    assert tuning["candidates"][0]["log_loss"] > best["log_loss"] + 0.05
    scores = model.score(unseen)
    assert spread(scores) > 0.5 and auc(scores, truth) > 0.9

    again = FastTextQuality(bucket=1 << 18).fit(hq, train_other)
    assert again.tuning_ == tuning and np.array_equal(again.score(unseen), scores)


def test_auto_with_too_few_lines_to_compare_takes_the_middle_epochs():
    model = FastTextQuality(bucket=1 << 17, epochs=(30, 5, 10)).fit(
        ["def f(x): return x", "import os"], ["in the beginning", "and it was good"])
    assert model.epoch_ == 10 and model.tuning_["candidates"] == []
    assert model.model_.f.getArgs().epoch == 10


def test_settings_are_checked():
    for bad in (0, 2.5, "many", True):
        with pytest.raises(ValueError, match="epoch must be a positive integer or 'auto'"):
            FastTextQuality(epoch=bad)
    with pytest.raises(ValueError, match="epochs must be positive integers"):
        FastTextQuality(epochs=())
    with pytest.raises(ValueError, match="tune_holdout must be in"):
        FastTextQuality(tune_holdout=1.0)
    with pytest.raises(ValueError, match="give at least 83,887"):
        FastTextQuality(bucket=80_000)
    FastTextQuality(bucket=83_887)
    FastTextQuality(bucket=0, word_ngrams=1)  # no n-grams: fastText uses no buckets


@pytest.mark.slow
def test_small_buckets_train_the_same_model_after_other_models(texts):
    """fastText on one thread leaves nine tenths of its input matrix as allocated: the
    smallest ``bucket`` allowed still gets fresh (zeroed) memory after larger models were
    trained and freed in the same process."""
    hq, other, _ = texts
    probe = hq[:20] + other[-20:]
    first = FastTextQuality(epoch=10, bucket=83_887).fit(hq[:50], other[:50]).score(probe)
    for _ in range(3):
        FastTextQuality(epoch=1, bucket=400_000).fit(hq, other[:600])
        again = FastTextQuality(epoch=10, bucket=83_887).fit(hq[:50], other[:50])
        assert np.array_equal(again.score(probe), first)

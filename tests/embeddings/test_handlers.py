"""The model handlers inside Beam's RunInference on the test runner: the real handler's
batching with a fake model behind it, and the quality classifiers' handler on real models."""

from __future__ import annotations

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to
from fakes import CountingProgress, FakeSentenceHandler, HashingSentenceModel

from tamis.embeddings.classifiers import QualityHandler, load_classifier, save_classifier
from tamis.embeddings.fasttext_quality import FastTextQuality
from tamis.selectors.quality import EmbeddingLogistic


def test_run_inference_embeds_each_batch_as_one_example():
    texts = {"a": ["the river runs", "stone and river"], "b": ["compiler error"]}
    handler = FakeSentenceHandler(dim=8, batch_size=1)
    with test_pipeline.TestPipeline() as p:
        vectors = (p | beam.Create(sorted(texts.items()))
                   | RunInference(KeyedModelHandler(handler))
                   | beam.MapTuple(lambda key, v: (key, v.shape, bool(np.allclose(
                       np.linalg.norm(v, axis=1), 1.0)))))
        assert_that(vectors, equal_to([("a", (2, 8), True), ("b", (1, 8), True)]))


def test_the_handler_calls_the_model_batch_by_batch_and_counts_progress():
    progress = CountingProgress()
    handler = FakeSentenceHandler(dim=4, batch_size=2, progress=progress)
    model = handler.load_model()
    (out,) = handler.run_inference([[f"text {i}" for i in range(5)]], model)
    assert out.shape == (5, 4) and model.calls == [2, 2, 1]
    assert progress.done == 5 and progress.flushes == 1
    (empty,) = handler.run_inference([[]], model)
    assert empty.shape == (0, 4)
    direct = HashingSentenceModel(4).encode(["text 3"])
    assert np.array_equal(out[3:4], direct)


@pytest.mark.parametrize("kind", ["fasttext", "embedding"])
def test_the_quality_handler_loads_what_was_saved_and_scores_batches(kind, tmp_path):
    rng = np.random.default_rng(0)
    if kind == "fasttext":
        good = [f"the function returns a list of values {i}" for i in range(40)]
        bad = [f"buy cheap watches now click here {i}" for i in range(40)]
        model = FastTextQuality(epoch=20).fit(good, bad)
        batch, path = [good[:3] + bad[:3]], str(tmp_path / "quality.bin")
    else:
        pos, neg = rng.normal(0.5, 1, (60, 6)), rng.normal(-0.5, 1, (60, 6))
        model = EmbeddingLogistic(Cs=(1.0,)).fit(pos, neg)
        batch, path = [np.r_[pos[:3], neg[:3]]], str(tmp_path / "quality.npz")
    save_classifier(model, path)
    handler = QualityHandler(path)
    (scores,) = handler.run_inference(batch, handler.load_model())
    assert np.array_equal(scores, model.score(batch[0]))
    assert scores[:3].mean() > scores[3:].mean()
    assert type(load_classifier(path)) is type(model)

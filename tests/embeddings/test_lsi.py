from __future__ import annotations

import io

import numpy as np
import pytest

from tamis.embeddings.lsi import LsiHandler, LsiModel

DOCS = [
    "the river runs past the old stone mill",
    "stone walls line the river bank near the mill",
    "the compiler reports an error in the function",
    "a function call failed and the compiler stopped",
    "the mill grinds grain beside the river",
    "errors in the compiler output point to the function",
] * 3


def test_fit_transform_gives_unit_vectors_that_group_topics():
    model = LsiModel(dim=2, min_df=1).fit(DOCS)
    vectors = model.transform(["river mill stone", "compiler function error", "zzz qqq"])
    assert vectors.shape == (3, 2) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors[:2], axis=1), 1.0, atol=1e-6)
    assert np.all(vectors[2] == 0)  # no known term
    reference = model.transform(DOCS[:2])
    assert vectors[0] @ reference[0] > vectors[1] @ reference[0]


def test_save_and_load_without_pickle_round_trip_exactly(tmp_path):
    model = LsiModel(dim=3, min_df=1, seed=4).fit(DOCS)
    buffer = io.BytesIO()
    model.save(buffer)
    buffer.seek(0)
    np.load(buffer, allow_pickle=False)  # no object arrays inside
    buffer.seek(0)
    loaded = LsiModel.load(buffer)
    assert np.array_equal(loaded.transform(DOCS), model.transform(DOCS))
    path = tmp_path / "lsi.npz"
    with open(path, "wb") as f:
        model.save(f)
    handler = LsiHandler(str(path))
    (out,) = handler.run_inference([DOCS[:4]], handler.load_model())
    assert np.array_equal(out, model.transform(DOCS[:4]))


def test_fits_are_deterministic():
    a = LsiModel(dim=3, min_df=1, seed=1).fit(DOCS)
    b = LsiModel(dim=3, min_df=1, seed=1).fit(DOCS)
    assert np.array_equal(a.components_, b.components_)


def test_bad_samples_are_explained():
    with pytest.raises(ValueError, match="at least 2 sample documents"):
        LsiModel().fit(["one"])
    with pytest.raises(ValueError, match="no term appears in 5\\+ sample documents"):
        LsiModel(min_df=5).fit(["alpha beta", "gamma delta"])

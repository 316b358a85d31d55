"""Acoustic embeddings on real speech made with espeak-ng, clean and through a telephone band
(sox): clips of one condition are nearer each other than the other condition's, whoever
speaks; the same numbers on every run."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from tamis.embeddings.acoustic import DIM, AcousticEmbedder, AcousticHandler, log_mel

pytest.importorskip("soundfile")
pytest.importorskip("scipy")

VOICES = ("en+m3", "en+f2", "en+m7", "en+f4")
LINES = ("Please hold the line.", "Your account balance is forty two dollars.",
         "Press one for sales, or two for support.", "We are closed on public holidays.")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        pytest.skip("espeak-ng and sox are installed by .ci/run")
    from tamis.storage.audio import decode

    root = tmp_path_factory.mktemp("acoustic")
    out = []
    for i, (voice, line) in enumerate(zip(VOICES, LINES, strict=True)):
        clean = root / f"clean{i}.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(clean), line], check=True)
        phone = root / f"phone{i}.wav"
        subprocess.run(["sox", str(clean), str(phone), "rate", "8k", "sinc", "300-3400"],
                       check=True)
        out += [("clean", decode(str(clean)).samples), ("phone", decode(str(phone)).samples)]
    return out


def test_conditions_cluster_whoever_speaks(clips):
    embedder = AcousticEmbedder()
    raw = embedder.encode([c for _, c in clips])
    assert raw.shape == (len(clips), DIM) and raw.dtype == np.float32
    x = raw.astype(np.float64)
    z = (x - x.mean(0)) / np.maximum(x.std(0), 1e-9)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    sims = z @ z.T
    np.fill_diagonal(sims, -np.inf)
    labels = [label for label, _ in clips]
    nearest = [labels[int(np.argmax(row))] for row in sims]
    assert nearest == labels


def test_deterministic_on_the_grid_and_through_the_handler(clips):
    embedder = AcousticEmbedder()
    a = embedder.encode([c for _, c in clips])
    assert np.array_equal(a, embedder.encode([c for _, c in clips]))
    grid = a.astype(np.float64) * 2 ** 16
    assert np.array_equal(grid, np.round(grid))
    handler = AcousticHandler()
    (out,) = handler.run_inference([[c for _, c in clips[:2]]], handler.load_model())
    assert np.array_equal(out, a[:2])
    assert embedder.identity()["content_hash"] == AcousticEmbedder().identity()["content_hash"]


def test_short_and_silent_input_still_gives_frames():
    assert log_mel(np.zeros(10)).shape == (1, 40)
    assert np.isfinite(AcousticEmbedder().encode([np.zeros(100)])).all()

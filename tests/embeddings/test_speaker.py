"""The real resemblyzer voice encoder on speech made with espeak-ng: a voice's clips are
nearer each other than other voices' clips, whatever is said; short clips are padded; the
vectors are unit-length, on the grid, the same on every run."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

pytest.importorskip("resemblyzer")
pytest.importorskip("soundfile")

from tamis.embeddings.speaker import DIM, SpeakerEmbedder, SpeakerHandler  # noqa: E402

VOICES = ("en+m3", "en+f4", "de+m7")
LINES = ("Please hold the line while we connect you.",
         "Your account balance is forty two dollars.",
         "The office is closed on public holidays.")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    if not shutil.which("espeak-ng"):
        pytest.skip("espeak-ng is installed by .ci/run")
    from tamis.storage.audio import decode

    root = tmp_path_factory.mktemp("speaker")
    out = []
    for v, voice in enumerate(VOICES):
        for i, line in enumerate(LINES):
            path = root / f"{v}-{i}.wav"
            subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), line], check=True)
            out.append((voice, decode(str(path)).samples))
    return out


@pytest.mark.slow
def test_a_voice_is_nearest_itself(clips):
    x = SpeakerEmbedder().encode([c for _, c in clips]).astype(np.float64)
    assert x.shape == (len(clips), DIM)
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-3)
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    voices = [v for v, _ in clips]
    assert [voices[int(np.argmax(row))] for row in sims] == voices


@pytest.mark.slow
def test_short_clips_deterministic_and_the_handler(clips):
    embedder = SpeakerEmbedder()
    short = clips[0][1][:4000]  # a quarter of a second
    a = embedder.encode([short, clips[1][1]])
    assert np.isfinite(a).all() and np.array_equal(a, embedder.encode([short, clips[1][1]]))
    grid = a.astype(np.float64) * 2 ** 16
    assert np.array_equal(grid, np.round(grid))
    handler = SpeakerHandler()
    (out,) = handler.run_inference([[short, clips[1][1]]], handler.load_model())
    assert np.array_equal(out, a)
    assert embedder.identity()["content_hash"].startswith("sha256:")

"""The real Silero VAD on speech made with espeak-ng and on noise made with sox: the speech
share of a clip, and the same share on every run."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

pytest.importorskip("silero_vad")
pytest.importorskip("soundfile")

from tamis.embeddings.vad import VoiceActivity, VoiceActivityHandler  # noqa: E402


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        pytest.skip("espeak-ng and sox are installed by .ci/run")
    from tamis.storage.audio import decode

    root = tmp_path_factory.mktemp("vad")
    speech = root / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(speech),
                    "Thank you for calling. Please hold while we find an agent."], check=True)
    padded = root / "padded.wav"
    subprocess.run(["sox", str(speech), str(padded), "pad", "0", "4"], check=True)
    noise = root / "noise.wav"
    subprocess.run(["sox", "-n", "-r", "16000", "-c", "1", str(noise), "synth", "3",
                    "brownnoise", "vol", "0.2"], check=True)
    return {name: decode(str(root / f"{name}.wav")).samples
            for name in ("speech", "padded", "noise")}


@pytest.mark.slow
def test_speech_share_of_speech_silence_and_noise(clips):
    vad = VoiceActivity()
    ratio = dict(zip(clips, vad.speech_ratio(list(clips.values())), strict=True))
    assert ratio["speech"] > 0.8
    seconds = {k: len(v) / 16000 for k, v in clips.items()}
    expected = ratio["speech"] * seconds["speech"] / seconds["padded"]
    assert ratio["padded"] == pytest.approx(expected, abs=0.1)
    assert ratio["noise"] < 0.1
    again = vad.speech_ratio(list(clips.values()))
    assert np.array_equal(again, np.array(list(ratio.values())))
    handler = VoiceActivityHandler()
    (out,) = handler.run_inference([[clips["speech"]]], handler.load_model())
    assert out[0] == ratio["speech"]
    assert vad.identity()["content_hash"].startswith("sha256:")
    assert vad.speech_ratio([np.zeros(0, np.float32)])[0] == 0.0

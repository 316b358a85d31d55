"""Audio decoding on real speech made in the test with espeak-ng and sox: 16 kHz mono, the
same samples from a path and from bytes and on every run, and a reason for every bad clip."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tamis.storage.audio import SAMPLE_GRID, TARGET_RATE, decode, resample

sf = pytest.importorskip("soundfile")
pytest.importorskip("scipy")
needs_tools = pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")),
                                 reason="espeak-ng and sox are installed by .ci/run")


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> dict[str, Path]:
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        pytest.skip("espeak-ng and sox are installed by .ci/run")
    root = tmp_path_factory.mktemp("audio")
    clean = root / "clean.wav"
    subprocess.run(["espeak-ng", "-v", "en+f3", "-w", str(clean),
                    "Please hold the line while we connect your call."], check=True)
    out = {"clean": clean}
    for name, effect in (("phone.wav", ["rate", "8k", "sinc", "300-3400"]),
                         ("stereo.wav", ["remix", "1", "1v0.5"]),
                         ("clean.flac", []), ("clean.ogg", [])):
        path = root / name
        subprocess.run(["sox", str(clean), str(path), *effect], check=True)
        out[name] = path
    return out


@needs_tools
def test_speech_is_read_as_16k_mono(speech):
    info = sf.info(str(speech["clean"]))
    clip = decode(str(speech["clean"]))
    assert clip.ok and clip.source_rate == info.samplerate == 22050
    assert clip.seconds == pytest.approx(info.frames / info.samplerate)
    assert len(clip.samples) == pytest.approx(clip.seconds * TARGET_RATE, abs=1)
    assert clip.samples.dtype == np.float32
    grid = clip.samples.astype(np.float64) / SAMPLE_GRID
    assert np.array_equal(grid, np.round(grid))  # on the 16-bit grid
    phone = decode(str(speech["phone.wav"]))
    assert phone.ok and phone.source_rate == 8000
    assert len(phone.samples) == pytest.approx(phone.seconds * TARGET_RATE, abs=1)


@needs_tools
def test_channels_formats_and_bytes_give_the_same_samples(speech):
    clean = decode(str(speech["clean"]))
    stereo = decode(str(speech["stereo.wav"]))
    data, rate = sf.read(str(speech["stereo.wav"]), always_2d=True)
    assert stereo.ok and data.shape[1] == 2
    assert np.array_equal(stereo.samples, resample(data.mean(axis=1), rate))
    flac = decode(str(speech["clean.flac"]))
    assert np.array_equal(flac.samples, clean.samples)  # lossless
    ogg = decode(str(speech["clean.ogg"]))
    assert ogg.ok and abs(len(ogg.samples) - len(clean.samples)) <= 16
    from_bytes = decode(speech["clean"].read_bytes())
    assert np.array_equal(from_bytes.samples, clean.samples)
    assert np.array_equal(decode(str(speech["clean"])).samples, clean.samples)


def test_resampling_keeps_a_tone(tmp_path):
    for rate in (8000, 11025, 22050, 44100, 48000):
        t = np.arange(rate) / rate
        y = resample(0.5 * np.sin(2 * np.pi * 1000 * t), rate)
        ref = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(len(y)) / TARGET_RATE)
        assert len(y) == TARGET_RATE
        assert np.max(np.abs(y[1000:-1000] - ref[1000:-1000])) < 1e-4, rate


def test_every_bad_clip_has_its_reason(tmp_path):
    rate = 16000
    sf.write(tmp_path / "silent.wav", np.zeros(rate), rate)
    square = np.sign(np.sin(2 * np.pi * 200 * np.arange(rate) / rate))
    sf.write(tmp_path / "clipped.wav", square, rate, subtype="FLOAT")
    sf.write(tmp_path / "empty.wav", np.zeros(0), rate)
    sf.write(tmp_path / "long.wav", 0.1 * np.sin(np.arange(3 * rate)), rate)
    (tmp_path / "noise.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 8)
    (tmp_path / "clip.m4a").write_bytes(b"\x00\x00\x00\x18ftypM4A ")
    cases = {"silent.wav": "silent", "clipped.wav": "clipped", "empty.wav": "empty",
             "noise.wav": "unreadable", "clip.m4a": "unsupported_format",
             "missing.wav": "missing_file"}
    for name, reason in cases.items():
        clip = decode(str(tmp_path / name))
        assert clip.reason == reason and not clip.ok and clip.detail, name
        assert len(clip.samples) == 0
    assert decode(str(tmp_path / "long.wav"), max_seconds=2).reason == "too_long"
    assert decode(str(tmp_path / "long.wav"), max_seconds=5).ok
    assert decode(b"not audio at all").reason == "unsupported_format"  # no known container

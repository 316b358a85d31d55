"""NeMo and Lhotse manifests, in and out: our writers' output read by the real Lhotse, a cut
set Lhotse wrote read by ours, and a reason for every line that cannot be used."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tamis.storage.speech_manifests import (
    ClipEntry,
    read_lhotse,
    read_nemo,
    write_lhotse,
    write_nemo,
)


@pytest.fixture(scope="module")
def wav(tmp_path_factory) -> Path:
    if not shutil.which("espeak-ng"):
        pytest.skip("espeak-ng is installed by .ci/run")
    path = tmp_path_factory.mktemp("clips") / "audio" / "hello.wav"
    path.parent.mkdir()
    subprocess.run(["espeak-ng", "-w", str(path), "Your call is important to us."],
                   check=True)
    return path


def test_nemo_reads_resolves_and_rejects(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"")
    lines = [
        {"audio_filepath": "a.wav", "duration": 2.5, "text": "bonjour", "speaker_id": 7,
         "lang": "fr", "snr": 31.0},
        {"audio_filepath": "/abs/b.wav", "duration": 1.0, "offset": 0.5},
        "{not json",
        {"duration": 1.0},
        {"audio_filepath": "c.wav", "duration": -1},
        {"audio_filepath": "c.wav", "duration": 1, "offset": "x"},
    ]
    path = tmp_path / "manifest.json"
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines))
    clips, rejects = read_nemo(str(path))
    assert [c.audio for c in clips] == [str(tmp_path / "a.wav"), "/abs/b.wav"]
    assert clips[0].speaker == "7" and clips[0].language == "fr" and clips[0].text == "bonjour"
    assert clips[0].extra == {"snr": 31.0} and clips[1].offset == 0.5
    assert [(r.row, r.reason) for r in rejects] == [
        (2, "invalid_json"), (3, "missing_audio_filepath"), (4, "bad_duration"),
        (5, "bad_offset")]
    out = tmp_path / "out" / "selected.json"
    assert write_nemo(clips, str(out)) == 2
    again, none = read_nemo(str(out))
    assert not none and [(c.audio, c.duration, c.offset, c.text, c.speaker, c.language)
                         for c in again] == [
        (c.audio, c.duration, c.offset, c.text, c.speaker, c.language) for c in clips]


def test_our_cuts_load_in_lhotse_and_lhotse_cuts_load_in_ours(wav, tmp_path):
    lhotse = pytest.importorskip("lhotse")
    import soundfile as sf

    info = sf.info(str(wav))
    clip = ClipEntry(id="clip-1", audio=str(wav), duration=1.25, offset=0.5,
                     text="your call", speaker="spk-3", language="en",
                     sampling_rate=info.samplerate, extra={"fused": 0.75, "rank": 1})
    out = tmp_path / "cuts.jsonl.gz"
    assert write_lhotse([clip], str(out), {str(wav): info.frames}) == 1
    cuts = lhotse.CutSet.from_jsonl(str(out))
    cut = next(iter(cuts))
    assert cut.id == "clip-1" and cut.start == 0.5 and cut.duration == 1.25
    assert cut.supervisions[0].text == "your call" and cut.supervisions[0].speaker == "spk-3"
    assert cut.custom == {"fused": 0.75, "rank": 1}
    audio = cut.load_audio()
    assert audio.shape[0] == 1 and abs(audio.shape[1] - 1.25 * info.samplerate) <= 1
    back, rejects = read_lhotse(str(out))
    assert not rejects and back[0].audio == str(wav) and back[0].offset == 0.5
    assert back[0].text == "your call" and back[0].extra == {"fused": 0.75, "rank": 1}
    # a cut set Lhotse itself wrote
    recording = lhotse.Recording.from_file(str(wav))
    theirs = lhotse.CutSet.from_cuts([lhotse.MonoCut(
        id="theirs", start=0.0, duration=recording.duration, channel=0, recording=recording,
        supervisions=[lhotse.SupervisionSegment(
            id="s", recording_id=recording.id, start=0.0, duration=recording.duration,
            text="your call is important", speaker="spk-9", language="en")])])
    theirs.to_jsonl(tmp_path / "theirs.jsonl.gz")
    read, rejects = read_lhotse(str(tmp_path / "theirs.jsonl.gz"))
    assert not rejects and read[0].duration == pytest.approx(recording.duration)
    assert read[0].speaker == "spk-9" and read[0].sampling_rate == info.samplerate


def test_lhotse_lines_that_cannot_be_used(tmp_path):
    good = {"id": "c", "start": 0, "duration": 1.0, "type": "MonoCut",
            "recording": {"id": "r", "sources": [{"type": "file", "channels": [0],
                                                  "source": "x.wav"}],
                          "sampling_rate": 16000, "num_samples": 16000, "duration": 1.0}}
    url = json.loads(json.dumps(good))
    url["recording"]["sources"][0]["type"] = "url"
    lines = [json.dumps(good), "nope", json.dumps({"type": "MixedCut"}), json.dumps(url),
             json.dumps({**good, "duration": 0})]
    path = tmp_path / "cuts.jsonl"
    path.write_text("\n".join(lines))
    clips, rejects = read_lhotse(str(path))
    assert [c.audio for c in clips] == [str(tmp_path / "x.wav")]
    assert [r.reason for r in rejects] == ["invalid_json", "not_a_mono_cut",
                                           "unsupported_source", "bad_duration"]
    with pytest.raises(ValueError, match="sampling rate"):
        write_lhotse([ClipEntry("a", "a.wav", 1.0)], str(tmp_path / "x.jsonl"))

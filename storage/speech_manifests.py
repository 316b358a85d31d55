"""The audio manifests speech trainers read, in and out: NeMo JSONL and Lhotse cut manifests.

Both readers give :class:`ClipEntry` rows (one per clip: its audio file, offset and duration
in seconds, transcript, speaker and language when known) and, for each line they cannot use,
a reject naming the file, the line, the field and the reason. Audio paths relative to a
manifest are resolved against the manifest's folder, as NeMo and Lhotse do.

* NeMo (``audio_filepath``, ``duration``, optional ``offset``, ``text``, ``speaker_id`` or
  ``speaker``, ``lang`` or ``language``; one JSON object per line).
* Lhotse ``CutSet`` JSONL (``.jsonl`` or ``.jsonl.gz``): ``MonoCut`` records whose recording
  has one ``file`` source; the transcript is the supervisions' text in time order, the speaker
  and language those of the first supervision.

The writers emit what ``nemo`` data loaders and ``lhotse.CutSet.from_jsonl`` read with no
glue, plus the selection's own fields (``custom`` in Lhotse, top-level keys in NeMo).
"""

from __future__ import annotations

import gzip
import json
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ClipEntry:
    id: str
    audio: str
    duration: float
    offset: float = 0.0
    text: str | None = None
    speaker: str | None = None
    language: str | None = None
    sampling_rate: int | None = None
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ManifestReject:
    source: str
    row: int
    field: str | None
    reason: str
    record: str


def _lines(path: str) -> Iterator[tuple[int, str]]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if line.strip():
                yield i, line


def _resolve(path: str, manifest: str) -> str:
    if "://" in path or os.path.isabs(path):
        return path
    return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(manifest)), path))


def _seconds(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) and value >= 0 else None


def read_nemo(path: str) -> tuple[list[ClipEntry], list[ManifestReject]]:
    """A NeMo manifest's clips and rejects (``invalid_json``, ``missing_audio_filepath``,
    ``bad_duration``, ``bad_offset``). An id is the line's ``id`` if it has one, else
    ``<audio path>#<offset>``."""
    clips, rejects = [], []
    for i, line in _lines(path):
        try:
            rec = json.loads(line)
        except ValueError:
            rejects.append(ManifestReject(path, i, None, "invalid_json", line.rstrip("\n")))
            continue
        if not isinstance(rec, dict) or not isinstance(rec.get("audio_filepath"), str) or \
                not rec["audio_filepath"]:
            rejects.append(ManifestReject(path, i, "audio_filepath", "missing_audio_filepath",
                                          line.rstrip("\n")))
            continue
        duration, offset = _seconds(rec.get("duration")), _seconds(rec.get("offset", 0.0))
        if duration is None or duration == 0:
            rejects.append(ManifestReject(path, i, "duration", "bad_duration",
                                          line.rstrip("\n")))
            continue
        if offset is None:
            rejects.append(ManifestReject(path, i, "offset", "bad_offset", line.rstrip("\n")))
            continue
        audio = _resolve(rec["audio_filepath"], path)
        known = {"audio_filepath", "duration", "offset", "text", "speaker_id", "speaker",
                 "lang", "language", "id"}
        speaker = rec.get("speaker_id", rec.get("speaker"))
        clips.append(ClipEntry(
            id=str(rec.get("id") or f"{rec['audio_filepath']}#{offset:g}"), audio=audio,
            duration=duration, offset=offset, text=_text(rec.get("text")),
            speaker=None if speaker is None else str(speaker),
            language=_text(rec.get("lang", rec.get("language"))),
            extra={k: v for k, v in rec.items() if k not in known}))
    return clips, rejects


def _text(value) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def read_lhotse(path: str) -> tuple[list[ClipEntry], list[ManifestReject]]:
    """A Lhotse cut manifest's clips and rejects (``invalid_json``, ``not_a_mono_cut``,
    ``unsupported_source``, ``bad_duration``)."""
    clips, rejects = [], []
    for i, line in _lines(path):
        raw = line.rstrip("\n")
        try:
            cut = json.loads(line)
        except ValueError:
            rejects.append(ManifestReject(path, i, None, "invalid_json", raw))
            continue
        if not isinstance(cut, dict) or cut.get("type", "MonoCut") != "MonoCut" or \
                not isinstance(cut.get("recording"), dict):
            rejects.append(ManifestReject(path, i, "type", "not_a_mono_cut", raw))
            continue
        recording = cut["recording"]
        sources = recording.get("sources") or []
        if len(sources) != 1 or sources[0].get("type") != "file" or \
                not isinstance(sources[0].get("source"), str):
            rejects.append(ManifestReject(path, i, "recording.sources", "unsupported_source",
                                          raw))
            continue
        duration, start = _seconds(cut.get("duration")), _seconds(cut.get("start", 0.0))
        if not duration or start is None:
            rejects.append(ManifestReject(path, i, "duration", "bad_duration", raw))
            continue
        sups = sorted((s for s in cut.get("supervisions") or [] if isinstance(s, dict)),
                      key=lambda s: s.get("start", 0.0))
        text = " ".join(t for t in (_text(s.get("text")) for s in sups) if t) or None
        first = sups[0] if sups else {}
        clips.append(ClipEntry(
            id=str(cut.get("id") or f"{recording.get('id')}#{start:g}"),
            audio=_resolve(sources[0]["source"], path), duration=duration, offset=start,
            text=text, speaker=_text(first.get("speaker")),
            language=_text(first.get("language")),
            sampling_rate=recording.get("sampling_rate"),
            extra=dict(cut.get("custom") or {})))
    return clips, rejects


def _open_out(path: str):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return gzip.open(path, "wt", encoding="utf-8") if path.endswith(".gz") else open(
        path, "w", encoding="utf-8")


def write_nemo(clips: Iterable[ClipEntry], path: str) -> int:
    """One NeMo line per clip; returns the lines written."""
    n = 0
    with _open_out(path) as f:
        for c in clips:
            rec = {"audio_filepath": c.audio, "duration": c.duration, "offset": c.offset,
                   "text": c.text or "", "id": c.id}
            if c.speaker is not None:
                rec["speaker_id"] = c.speaker
            if c.language is not None:
                rec["lang"] = c.language
            rec.update(c.extra)
            f.write(json.dumps(rec, ensure_ascii=False, sort_keys=True) + "\n")
            n += 1
    return n


def write_lhotse(clips: Iterable[ClipEntry], path: str, num_samples: dict | None = None
                 ) -> int:
    """One ``MonoCut`` per clip: its recording, and one supervision over the whole cut when it
    has a transcript or speaker (its start relative to the cut, as in Lhotse).
    ``num_samples``: each recording's length by audio path, at the clip's ``sampling_rate``
    (which every clip needs). Returns the cuts written."""
    n = 0
    with _open_out(path) as f:
        for c in clips:
            if c.sampling_rate is None:
                raise ValueError(f"clip {c.id}: a Lhotse recording needs its sampling rate")
            samples = (num_samples or {}).get(c.audio)
            if samples is None:
                samples = int(round((c.offset + c.duration) * c.sampling_rate))
            rec_id = f"rec-{c.id}"
            recording = {"id": rec_id, "sources": [{"type": "file", "channels": [0],
                                                    "source": c.audio}],
                         "sampling_rate": int(c.sampling_rate), "num_samples": int(samples),
                         "duration": samples / c.sampling_rate, "channel_ids": [0]}
            cut = {"id": c.id, "start": c.offset, "duration": c.duration, "channel": 0,
                   "recording": recording, "supervisions": [], "type": "MonoCut"}
            if c.text is not None or c.speaker is not None:
                sup = {"id": f"sup-{c.id}", "recording_id": rec_id, "start": 0.0,
                       "duration": c.duration, "channel": 0}
                for key, value in (("text", c.text), ("speaker", c.speaker),
                                   ("language", c.language)):
                    if value is not None:
                        sup[key] = value
                cut["supervisions"] = [sup]
            if c.extra:
                cut["custom"] = dict(c.extra)
            f.write(json.dumps(cut, ensure_ascii=False, sort_keys=True) + "\n")
            n += 1
    return n

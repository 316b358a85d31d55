"""LSI: TF-IDF followed by a truncated SVD, fitted on a sample; the cheap alternative to a
sentence model for CPU-only users and very large corpora (the representation the CRISP paper
ablates against SBERT).

The fitted model is three arrays (vocabulary, idf, SVD components) saved with ``np.savez``
and loaded with ``allow_pickle=False``: no pickle.

Everything runs in float64, and the fitted idf and components are rounded to the grid of
:mod:`tamis.selectors.precision` (float64 BLAS and LAPACK differ between CPUs by about 1e-13
here, far below it). Vectors are float64 sparse products (no BLAS), rounded to float32 at the
end: a model and its vectors come out the same on every CPU.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import BinaryIO

import numpy as np
from apache_beam.ml.inference.base import ModelHandler

from tamis.selectors.precision import quantize
from tamis.storage.files import filesystem

TOKEN_PATTERN = r"(?u)\b\w\w+\b"


class LsiModel:
    """TF-IDF (sublinear tf, l2) + truncated SVD to ``dim`` dimensions, L2-normalised output.

    Parameters
    ----------
    dim : int
    max_features : int
        Vocabulary size, the most frequent terms of the sample.
    min_df : int
        A term must appear in at least this many sample documents.
    seed : int
        Seed of the randomized SVD.

    After :meth:`fit`: ``vocabulary_`` (terms, shape ``(v,)``), ``idf_`` (``(v,)``),
    ``components_`` (``(dim, v)``, float32), ``explained_variance_ratio_`` (``(dim,)``).
    """

    def __init__(self, dim: int = 256, max_features: int = 65536, min_df: int = 2,
                 seed: int = 0) -> None:
        self.dim, self.max_features, self.min_df, self.seed = dim, max_features, min_df, seed

    def _vectorizer(self, vocabulary=None):
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(lowercase=True, token_pattern=TOKEN_PATTERN, sublinear_tf=True,
                               min_df=1 if vocabulary is not None else self.min_df,
                               max_features=None if vocabulary is not None else self.max_features,
                               vocabulary=vocabulary, dtype=np.float64)

    def fit(self, texts: Sequence[str]) -> LsiModel:
        from sklearn.decomposition import TruncatedSVD

        if len(texts) < 2:
            raise ValueError(f"LSI needs at least 2 sample documents, got {len(texts)}")
        vectorizer = self._vectorizer()
        try:
            tfidf = vectorizer.fit_transform(texts)
        except ValueError as exc:  # empty vocabulary
            raise ValueError(f"LSI: no term appears in {self.min_df}+ sample documents "
                             f"({exc})") from None
        dim = min(self.dim, tfidf.shape[1] - 1, tfidf.shape[0] - 1)
        if dim < 1:
            raise ValueError(f"LSI: the sample has too few terms ({tfidf.shape[1]}) for any "
                             f"dimension")
        svd = TruncatedSVD(n_components=dim, algorithm="randomized", n_iter=7,
                           random_state=self.seed)
        svd.fit(tfidf)
        terms = vectorizer.get_feature_names_out()
        self.vocabulary_ = np.asarray(terms, dtype=str)
        self.idf_ = quantize(vectorizer.idf_)
        # on the grid, |value| <= 1: exact in float32
        self.components_ = quantize(svd.components_).astype(np.float32)
        self.explained_variance_ratio_ = quantize(svd.explained_variance_ratio_)
        self._prepare()
        return self

    def _prepare(self) -> None:
        vectorizer = self._vectorizer({t: i for i, t in enumerate(self.vocabulary_.tolist())})
        vectorizer.idf_ = self.idf_
        self._fitted_vectorizer = vectorizer
        self._components64 = None

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings, shape ``(n, dim)``, float32, unit norm (zero for texts with no known
        term)."""
        tfidf = self._fitted_vectorizer.transform(texts)
        if self._components64 is None:
            self._components64 = np.ascontiguousarray(self.components_.T, dtype=np.float64)
        vectors = np.asarray(tfidf @ self._components64, dtype=np.float64)
        norms = np.sqrt(np.sum(vectors * vectors, axis=1, keepdims=True))
        unit = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
        return unit.astype(np.float32)

    def save(self, f: BinaryIO) -> None:
        params = {"dim": self.dim, "max_features": self.max_features, "min_df": self.min_df,
                  "seed": self.seed}
        np.savez(f, vocabulary=self.vocabulary_, idf=self.idf_, components=self.components_,
                 explained_variance_ratio=self.explained_variance_ratio_,
                 params=np.asarray(json.dumps(params)))

    @classmethod
    def load(cls, f: BinaryIO) -> LsiModel:
        data = np.load(f, allow_pickle=False)
        model = cls(**json.loads(str(data["params"])))
        model.vocabulary_ = data["vocabulary"]
        model.idf_ = data["idf"]
        model.components_ = data["components"]
        model.explained_variance_ratio_ = data["explained_variance_ratio"]
        model._prepare()
        return model


class LsiHandler(ModelHandler[Sequence[str], np.ndarray, LsiModel]):
    """Embed batches of texts with a fitted :class:`LsiModel` saved at ``path``."""

    def __init__(self, path: str) -> None:
        super().__init__(min_batch_size=1, max_batch_size=1)
        self.path = path

    def load_model(self) -> LsiModel:
        fs, inner = filesystem(self.path)
        with fs.open_input_file(inner) as f:
            return LsiModel.load(f)

    def run_inference(self, batch: Sequence[Sequence[str]], model: LsiModel,
                      inference_args: dict | None = None) -> Iterable[np.ndarray]:
        return [model.transform(list(texts)) for texts in batch]

    def get_metrics_namespace(self) -> str:
        return "tamis_embed"

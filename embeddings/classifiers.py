"""The quality classifiers behind a Beam ``ModelHandler``: the DCLM fastText model on text and
the logistic regression on embeddings, loaded from the file an earlier step saved.

``embeddings/`` holds more than embedders: every model a stage runs lives here, behind a
``ModelHandler`` (sentence encoders and LSI; these classifiers; later speech encoders, language
identification and the LLM rewriters), its heavy imports inside ``load_model``.

:class:`QualityHandler` loads either kind from a local path or a URI (fastText reads local
files only: a remote model is copied to a temporary file first) and scores batches: each
example is a list of texts (fastText) or an ``(n, d)`` matrix (logistic), each prediction the
matching ``P(high quality)`` per row. :func:`save_classifier` writes either, all or nothing.
"""

from __future__ import annotations

import copy
import io
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from apache_beam.ml.inference.base import ModelHandler

from tamis.embeddings.fasttext_quality import FastTextQuality
from tamis.selectors.features import FeatureLogistic
from tamis.selectors.quality import EmbeddingLogistic
from tamis.storage.files import filesystem, write_atomically

#: What each kind of member reads from a batch of examples.
INPUTS = {"fasttext": "text", "features": "text", "embedding": "vectors"}


class Ensemble:
    """Stacked quality classifiers: each member (``fasttext``, ``features``, ``embedding``)
    scores out of fold, and a :class:`~tamis.selectors.features.Stacker` learns how much each
    one counts from those scores; the members are then refitted on everything.

    Examples are dicts: ``{"text": [...], "vectors": (n, d) array}``, each member reading its
    own (:data:`INPUTS`). Folds come from a keyed hash of (seed, id). A member's settings
    (fastText's epochs and learning rate, ``C``) are chosen once on all the training data,
    then kept for the out-of-fold fits. After :meth:`fit`: ``members_`` (fitted, by name),
    ``stacker_``, ``oof_auc_`` (each member's and the stack's AUC out of fold)."""

    kind = "ensemble"

    def __init__(self, members: dict, folds: int = 3, seed: int = 0) -> None:
        if folds < 2:
            raise ValueError(f"an ensemble needs at least 2 folds, got {folds}")
        self.members, self.folds, self.seed = dict(members), folds, seed

    def fit(self, positives: dict, negatives: dict) -> Ensemble:
        from tamis.selectors.features import Stacker, fold_of
        from tamis.selectors.quality import auc

        n_pos, n_neg = len(positives["ids"]), len(negatives["ids"])
        both = _concat(positives, negatives)
        labels = np.r_[np.ones(n_pos), np.zeros(n_neg)]
        fold = fold_of(list(both["ids"]), self.folds, self.seed)
        self.members_, oof = {}, np.zeros((len(labels), len(self.members)))
        for j, (name, unfitted) in enumerate(self.members.items()):
            full = copy.deepcopy(unfitted).fit(*_split(name, both, labels))
            self.members_[name] = full
            for f in range(self.folds):
                train, test = fold != f, fold == f
                if not test.any() or len(set(labels[train])) < 2:
                    continue
                part = _fixed(full, unfitted).fit(*_split(name, _take(both, train),
                                                          labels[train]))
                oof[test, j] = part.score(_take(both, test)[INPUTS[name]])
        self.stacker_ = Stacker(list(self.members)).fit(oof, labels)
        self.oof_auc_ = {name: auc(oof[:, j], labels) for j, name in enumerate(self.members)}
        self.oof_auc_["ensemble"] = auc(self.stacker_.score(oof), labels)
        return self

    def member_scores(self, examples: dict) -> np.ndarray:
        return np.stack([self.members_[name].score(examples[INPUTS[name]])
                         for name in self.members], axis=1)

    def score(self, examples: dict) -> np.ndarray:
        if not len(examples[INPUTS[next(iter(self.members))]]):
            return np.zeros(0)
        return self.stacker_.score(self.member_scores(examples))

    def describe(self) -> dict:
        """The weights as the manifest reports them: on the grid, the same on every CPU."""
        from tamis.selectors.precision import quantize

        return {"members": list(self.members), "folds": self.folds,
                "weights": {k: float(quantize(v)) for k, v in self.stacker_.weights_.items()},
                "intercept": float(quantize(self.stacker_.intercept_)),
                "oof_auc": self.oof_auc_}


def _concat(a: dict, b: dict) -> dict:
    out = {"ids": list(a["ids"]) + list(b["ids"])}
    if a.get("text") is not None:
        out["text"] = list(a["text"]) + list(b["text"])
    if a.get("vectors") is not None:
        out["vectors"] = np.concatenate([a["vectors"], b["vectors"]])
    return out


def _take(examples: dict, mask: np.ndarray) -> dict:
    out = {"ids": [i for i, m in zip(examples["ids"], mask, strict=True) if m]}
    if "text" in examples:
        out["text"] = [t for t, m in zip(examples["text"], mask, strict=True) if m]
    if "vectors" in examples:
        out["vectors"] = examples["vectors"][mask]
    return out


def _split(name: str, examples: dict, labels: np.ndarray):
    """``(positives, negatives)`` in the input ``name`` reads."""
    x = examples[INPUTS[name]]
    pos, neg = labels == 1, labels == 0
    if isinstance(x, np.ndarray):
        return x[pos], x[neg]
    return ([t for t, p in zip(x, pos, strict=True) if p],
            [t for t, q in zip(x, neg, strict=True) if q])


def _fixed(fitted, unfitted):
    """A fresh copy of ``unfitted`` with the settings ``fitted`` chose for itself."""
    fresh = copy.deepcopy(unfitted)
    if isinstance(fresh, FastTextQuality):
        fresh.epoch = getattr(fitted, "epoch_", fresh.epoch)
        fresh.lr = getattr(fitted, "lr_", fresh.lr)
    elif hasattr(fitted, "C_"):
        fresh.Cs = (fitted.C_,)
    return fresh


Classifier = FastTextQuality | EmbeddingLogistic | FeatureLogistic | Ensemble

#: Where a standalone classifier of each kind is saved in a quality output.
MODEL_FILES = {"fasttext": "models/quality.bin", "embedding": "models/quality.npz",
               "features": "models/quality-features.npz",
               "ensemble": "models/quality-ensemble.npz"}


def member_path(path: str, name: str) -> str:
    """Where an ensemble saved at ``path`` keeps its member ``name``."""
    base = path.rsplit(".", 1)[0]
    return f"{base}-{name}{'.bin' if name == 'fasttext' else '.npz'}"


def save_classifier(model: Classifier, path: str, about: dict | None = None) -> None:
    """All or nothing per file. fastText writes models to local paths only: save beside the
    target and rename, or save locally and copy to a remote file system. An ensemble saves its
    members beside itself (:func:`member_path`), then its own file. ``about`` (JSON-able)
    is recorded inside ``.npz`` models: what they were trained on, e.g. the embedding."""
    if isinstance(model, Ensemble):
        for name, member in model.members_.items():
            save_classifier(member, member_path(path, name), about)
        info = {"kind": "ensemble", "about": about or {}, **model.describe()}
        buffer = io.BytesIO()
        np.savez(buffer, info=np.asarray(json.dumps(info)))
        write_atomically(path, lambda f: f.write(buffer.getvalue()))
        return
    if isinstance(model, EmbeddingLogistic | FeatureLogistic):
        buffer = io.BytesIO()
        model.save(buffer)
        if about:
            with np.load(io.BytesIO(buffer.getvalue()), allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            arrays["about"] = np.asarray(json.dumps(about))
            buffer = io.BytesIO()
            np.savez(buffer, **arrays)
        write_atomically(path, lambda f: f.write(buffer.getvalue()))
        return
    if "://" not in path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = f"{path}.tmp-{os.getpid()}"
        model.save(tmp)
        os.replace(tmp, path)
        return
    with tempfile.TemporaryDirectory() as folder:
        local = os.path.join(folder, "m.bin")
        model.save(local)

        def copy_to(sink) -> None:
            with open(local, "rb") as src:
                while chunk := src.read(1 << 24):
                    sink.write(chunk)

        write_atomically(path, copy_to)


def _npz(path: str) -> dict:
    fs, inner = filesystem(path)
    with fs.open_input_stream(inner) as f:
        raw = f.read()
    with np.load(io.BytesIO(raw), allow_pickle=False) as data:
        info = json.loads(str(data["info"])) if "info" in data.files else {}
        about = json.loads(str(data["about"])) if "about" in data.files else {}
    return {"raw": raw, "info": info, "about": about}


def classifier_kind(path: str) -> str:
    """``fasttext``, ``embedding``, ``features`` or ``ensemble``: what a saved model is."""
    if not path.endswith(".npz"):
        return "fasttext"
    return _npz(path)["info"].get("kind", "embedding")


def trained_on(path: str) -> dict:
    """What a saved ``.npz`` classifier recorded about its training data (the embedding's
    model, content hash and dimension), ``{}`` when nothing."""
    if not path.endswith(".npz"):
        return {}
    found = _npz(path)
    return found["info"].get("about") or found["about"]


def load_classifier(path: str) -> Classifier:
    """A classifier saved by :func:`save_classifier`."""
    if path.endswith(".npz"):
        found = _npz(path)
        kind = found["info"].get("kind", "embedding")
        if kind == "features":
            return FeatureLogistic.load(io.BytesIO(found["raw"]))
        if kind == "ensemble":
            return _load_ensemble(path, found["info"])
        return EmbeddingLogistic.load(io.BytesIO(found["raw"]))
    if "://" not in path:
        return FastTextQuality.load(path)
    fs, inner = filesystem(path)
    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, "m.bin")
        with fs.open_input_stream(inner) as src, open(local, "wb") as dst:
            while chunk := src.read(1 << 24):
                dst.write(chunk)
        return FastTextQuality.load(local)


def _load_ensemble(path: str, info: dict) -> Ensemble:
    from tamis.selectors.features import Stacker

    members = {name: load_classifier(member_path(path, name)) for name in info["members"]}
    model = Ensemble(members, info["folds"])
    model.members_ = members
    model.stacker_ = Stacker.from_json({"members": info["members"], "C": 1.0,
                                        "weights": info["weights"],
                                        "intercept": info["intercept"]})
    model.oof_auc_ = info.get("oof_auc", {})
    return model


class QualityHandler(ModelHandler[Any, np.ndarray, Classifier]):
    """Score batches with the quality classifier saved at ``path``."""

    def __init__(self, path: str) -> None:
        super().__init__(min_batch_size=1, max_batch_size=1)
        self.path = path

    def load_model(self) -> Classifier:
        return load_classifier(self.path)

    def run_inference(self, batch: Sequence[Any], model: Classifier,
                      inference_args: dict | None = None) -> Iterable[np.ndarray]:
        return [np.asarray(model.score(example), dtype=np.float64) for example in batch]

    def get_metrics_namespace(self) -> str:
        return "tamis_quality"

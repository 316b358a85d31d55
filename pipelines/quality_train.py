"""Training a ``quality`` classifier: the training items, negatives by (seed, id) (length-
matched if asked), the held-out measure, the fit on everything, the saved model and its
description; and what a reused model's description says. Beam-free: the ``quality`` job's
``Train`` step calls :func:`train` on the small training sets.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from tamis.embeddings.classifiers import INPUTS, Ensemble, save_classifier
from tamis.embeddings.fasttext_quality import CC, HQ
from tamis.selectors.precision import quantize
from tamis.selectors.quality import accuracy, auc, holdout_mask, length_matched
from tamis.selectors.rules import first_failure
from tamis.selectors.sampling import row_keys
from tamis.selectors.signals import signals
from tamis.storage.errors import DataError
from tamis.storage.files import filesystem, join, write_atomically

if TYPE_CHECKING:
    from tamis.pipelines.quality import QualitySpec


# Training items: (key, id, text or None, vector bytes or None, length). The length is in
# characters when there is text, else in the embedding model's tokens.

def texts(table: pa.Table, column: str, seed: int):
    ids = table.column("id").to_pylist()
    for k, i, t in zip(row_keys(ids, seed).tolist(), ids, table.column(column).to_pylist(),
                       strict=True):
        yield k, i, t, None, len(t)


def vectors(item, seed: int):
    _, ids, vectors, tokens = item
    yield from zip(row_keys(ids, seed).tolist(), ids, [None] * len(ids),
                   [v.tobytes() for v in vectors], tokens.tolist(), strict=True)


def _joined(texts: list, vectors: list | None) -> list:
    """Text items with the vector of the same id (those without one are left out), or the
    vector items alone, or the text items alone."""
    if vectors is None:
        return sorted(texts)
    if texts is None:
        return sorted(vectors)
    by_id = {v[1]: v[3] for v in vectors}
    return sorted((k, i, t, by_id[i], n) for k, i, t, _, n in texts if i in by_id)


def _examples(items: list, mask: np.ndarray | None = None) -> dict:
    """What the members read, for the items where ``mask`` holds."""
    chosen = items if mask is None else [x for x, m in zip(items, mask, strict=True) if m]
    out = {"ids": [x[1] for x in chosen]}
    if chosen and chosen[0][2] is not None:
        out["text"] = [x[2] for x in chosen]
    if chosen and chosen[0][3] is not None:
        out["vectors"] = np.stack([np.frombuffer(x[3], np.float32) for x in chosen])
    return out


def _fit(spec: QualitySpec, positives: dict, negatives: dict):
    model = spec.model()
    if isinstance(model, Ensemble):
        return model.fit(positives, negatives)
    key = INPUTS[spec.classifier]
    return model.fit(positives[key], negatives[key])


def score(model, spec: QualitySpec, examples: dict) -> np.ndarray:
    if isinstance(model, Ensemble):
        return model.score(examples)
    return model.score(examples[INPUTS[spec.classifier]])


def pick_negatives(positives: list, candidates: list, n: int, length_match: bool,
                   seed: int) -> list:
    """``n`` of the candidate items (sorted by key): the first ones, or with ``length_match``
    those whose lengths follow the positives'."""
    if length_match and positives and candidates:
        pick = length_matched(np.array([p[4] for p in positives]),
                              np.array([c[4] for c in candidates]),
                              [c[1] for c in candidates], n, seed)
        return [candidates[i] for i in pick]
    return candidates[:n]


def train(pool: list, hq: list, spec: QualitySpec, pool_vectors=None,
           hq_vectors=None) -> dict:
    """Choose the negatives, measure on the held-out split, train on everything, save."""
    positives = _joined(hq if spec.needs_text else None, hq_vectors)
    candidates = _joined(pool if spec.needs_text else None, pool_vectors)
    negatives = pick_negatives(positives, candidates, spec.negatives or len(positives),
                               spec.length_match, spec.seed)
    if not positives or not negatives:
        raise DataError(f"quality needs positives and negatives, got {len(positives)} and "
                        f"{len(negatives)} (after rejecting empty and invalid texts"
                        f"{' and rows without a vector' if spec.needs_vectors else ''})")
    held_p = holdout_mask([p[1] for p in positives], spec.holdout, spec.seed)
    held_n = holdout_mask([c[1] for c in negatives], spec.holdout, spec.seed)
    trial = _fit(spec, _examples(positives, ~held_p), _examples(negatives, ~held_n))
    labels = np.r_[np.ones(int(held_p.sum())), np.zeros(int(held_n.sum()))]
    held = _examples(positives + negatives, np.r_[held_p, held_n])
    measured = len(labels) > 0 and held["ids"]
    held_scores = score(trial, spec, held) if measured else np.zeros(0)
    figures = {"heldout_accuracy": accuracy(held_scores, labels) if measured else None,
               "heldout_auc": auc(held_scores, labels) if measured else None}
    if isinstance(trial, Ensemble) and measured:
        member_scores = trial.member_scores(held)
        figures["heldout_auc_by_member"] = {
            name: auc(member_scores[:, j], labels) for j, name in enumerate(spec.members)}
    model = _fit(spec, _examples(positives), _examples(negatives))
    path = join(spec.out_dir, spec.model_file)
    about = {"embedding": dict(spec.embedding)} if spec.embedding and spec.needs_vectors else {}
    save_classifier(model, path, about)
    described = {"classifier": spec.classifier, **figures,
                 "heldout_positives": int(held_p.sum()), "heldout_negatives": int(held_n.sum()),
                 "holdout": spec.holdout, "heldout_documents": int(len(labels)),
                 "positives": len(positives), "negatives": len(negatives),
                 "length_match": spec.length_match, "seed": spec.seed,
                 "settings": _settings(model, spec), **about}
    text = json.dumps(described, indent=1).encode()
    write_atomically(_description(path), lambda f: f.write(text))
    hq_all = _examples(positives)
    return {"path": path, **figures, "heldout_positives": int(held_p.sum()),
            "heldout_negatives": int(held_n.sum()), "positives": len(positives),
            "negatives": len(negatives), "settings": described["settings"],
            "hq_scores": quantize(score(model, spec, hq_all)).tolist(),
            "hq_rule_pass": _rule_pass(spec, hq_all.get("text")),
            "negative_mean_length": float(np.mean([c[4] for c in negatives]))}


def _rule_pass(spec: QualitySpec, texts: list | None) -> list | None:
    """Which of the high-quality texts pass the rules (None: no rules or no text)."""
    if not spec.rules or texts is None:
        return None
    return (first_failure(spec.rules, signals(texts, spec.language)) < 0).tolist()


def _settings(model, spec: QualitySpec) -> dict:
    """What the fitted classifier chose and was given, for the manifest and the model's
    description."""
    def one(name: str, fitted) -> dict:
        if name == "fasttext":
            ft = spec.fasttext
            out = {"lr": getattr(fitted, "lr_", ft.lr), "dim": ft.dim,
                   "epoch": getattr(fitted, "epoch_", ft.epoch), "word_ngrams": ft.word_ngrams,
                   "bucket": getattr(ft, "bucket", None), "labels": [HQ, CC]}
            if getattr(fitted, "tuning_", None):
                out["tuning"] = fitted.tuning_
            return out
        grid = spec.logistic.Cs if name == "embedding" else spec.features.Cs
        out = {"C": fitted.C_, "Cs": list(grid)}
        inner = fitted.model_ if name == "features" else fitted
        if getattr(inner, "cv_", None):
            out["cv"] = inner.cv_
        if name == "features":
            out["weights"] = fitted.weights()
        return out

    if isinstance(model, Ensemble):
        return {**model.describe(),
                "by_member": {n: one(n, m) for n, m in model.members_.items()}}
    return one(spec.classifier, model)


def _description(model_path: str) -> str:
    """``models/quality.json`` beside ``models/quality.bin`` or ``.npz``."""
    return model_path.rsplit(".", 1)[0] + ".json"


def reuse(spec: QualitySpec) -> dict:
    """A trained model from an earlier run, with the figures its description gives."""
    about = {}
    fs, inner = filesystem(_description(spec.model_path))
    try:
        with fs.open_input_stream(inner) as f:
            about = json.loads(f.read())
    except (FileNotFoundError, OSError, ValueError):
        pass
    return {"path": spec.model_path, "heldout_accuracy": about.get("heldout_accuracy"),
            "heldout_auc": about.get("heldout_auc"), "reused": True,
            "heldout_auc_by_member": about.get("heldout_auc_by_member"),
            "heldout_positives": about.get("heldout_positives", 0),
            "heldout_negatives": about.get("heldout_negatives", 0),
            "positives": about.get("positives", 0), "negatives": about.get("negatives", 0),
            "settings": about.get("settings"), "hq_scores": [], "hq_rule_pass": None,
            "negative_mean_length": float("nan")}



"""Training the ``bilingual`` job's quality classifier on the base language only: positives
are its high-quality text, negatives its generalist text (length-matched by default, as in
the quality job). Beam-free: the job's ``Train`` step calls :func:`train` on the small sets.

The classifier reads what carries over to other languages unchanged: the language-agnostic
text signals (:data:`~tamis.selectors.features.LANGUAGE_AGNOSTIC`, stop words from each
language's own list) and the vectors of a multilingual sentence encoder. Scoring
(:func:`score`) computes a batch's signals with the language of its rows.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np

from tamis.embeddings.classifiers import Ensemble, save_classifier
from tamis.pipelines.quality_train import pick_negatives
from tamis.selectors.bilingual import neutral_signals
from tamis.selectors.features import FeatureLogistic
from tamis.selectors.precision import quantize
from tamis.selectors.quality import (
    EmbeddingLogistic,
    accuracy,
    auc,
    holdout_mask,
)
from tamis.selectors.signals import signals, stop_list
from tamis.storage.errors import DataError
from tamis.storage.files import join, write_atomically

if TYPE_CHECKING:
    from tamis.pipelines.bilingual import BilingualSpec

MODEL_FILE = "models/bilingual.npz"


def encoder_of(spec: BilingualSpec):
    from tamis.embeddings.multilingual import MultilingualEncoder

    return MultilingualEncoder(spec.encoder)


def _examples(items: list, spec: BilingualSpec, encoder) -> dict:
    texts = [x[2] for x in items]
    out = {"ids": [x[1] for x in items], "text": texts}
    if "embedding" in spec.members:
        out["vectors"] = encoder.encode(texts) if texts else np.zeros((0, 1), np.float32)
    return out


def _take(examples: dict, mask: np.ndarray) -> dict:
    out = {"ids": [i for i, m in zip(examples["ids"], mask, strict=True) if m],
           "text": [t for t, m in zip(examples["text"], mask, strict=True) if m]}
    if "vectors" in examples:
        out["vectors"] = examples["vectors"][mask]
    return out


def _model(spec: BilingualSpec):
    import copy

    members = {"features": copy.deepcopy(spec.features),
               "embedding": copy.deepcopy(spec.logistic)}
    if spec.classifier == "ensemble":
        return Ensemble({m: members[m] for m in spec.members}, spec.folds, spec.seed)
    return members[spec.classifier]


def _fit(spec: BilingualSpec, positives: dict, negatives: dict):
    model = _model(spec)
    if isinstance(model, Ensemble):
        return model.fit(positives, negatives)
    key = "text" if spec.classifier == "features" else "vectors"
    return model.fit(positives[key], negatives[key])


#: The bilingual score is sigmoid(log-odds / SCORE_TEMPERATURE): monotone in P(high quality),
#: but a classifier applied to another language is often sure of itself (log-odds of 20 and
#: more), and its probabilities would tie at 1 on the grid, losing the ranking the per-language
#: cut-offs need.
SCORE_TEMPERATURE = 8.0
#: A member's log-odds as the stacker reads them: logits of probabilities kept inside
#: [2**-16, 1 - 2**-16] (:func:`tamis.selectors.features.logit`).
MEMBER_LIMIT = float(np.log(2.0 ** 16 - 1))


def score(model, language: str, texts: list[str], vectors: np.ndarray | None) -> np.ndarray:
    """The bilingual score of texts of one language, on the grid: the signals are computed
    with that language's stop words (those its script cannot carry scored neutral), the
    vectors come from the multilingual encoder."""
    if not texts:
        return np.zeros(0)
    values = None
    if isinstance(model, FeatureLogistic) or isinstance(model, Ensemble) and (
            "features" in model.members_):
        values = signals(texts, language)
    neutral = neutral_signals(language, bool(stop_list(language)))
    if isinstance(model, FeatureLogistic):
        z = model.decision(values, neutral)
    elif isinstance(model, EmbeddingLogistic):
        z = model.decision(vectors)
    else:
        stack = model.stacker_
        z = np.full(len(texts), stack.intercept_)
        for m in model.members:
            member = model.members_[m]
            zm = (member.decision(values, neutral) if m == "features"
                  else member.decision(vectors))
            z = z + stack.weights_[m] * np.clip(zm, -MEMBER_LIMIT, MEMBER_LIMIT)
    return quantize(0.5 * (1.0 + np.tanh(0.5 * z / SCORE_TEMPERATURE)))


def train(negative_items: list, positive_items: list, spec: BilingualSpec) -> dict:
    """Choose the negatives, measure on the held-out split, train on everything, save."""
    positives = sorted(positive_items)
    candidates = sorted(negative_items)
    negatives = pick_negatives(positives, candidates, spec.n_negatives or len(positives),
                               spec.length_match, spec.seed)
    if not positives or not negatives:
        where = ("the negatives" if spec.negatives is not None
                 else f"the pool's rows identified as '{spec.base_language}'")
        raise DataError(f"bilingual needs positives and negatives in '{spec.base_language}', "
                        f"got {len(positives)} positives and {len(negatives)} negatives "
                        f"(from {where})")
    encoder = encoder_of(spec) if "embedding" in spec.members else None
    pos, neg = _examples(positives, spec, encoder), _examples(negatives, spec, encoder)
    held_p = holdout_mask(pos["ids"], spec.holdout, spec.seed)
    held_n = holdout_mask(neg["ids"], spec.holdout, spec.seed)
    figures: dict = {"heldout_accuracy": None, "heldout_auc": None}
    if held_p.any() and held_n.any() and (~held_p).any() and (~held_n).any():
        trial = _fit(spec, _take(pos, ~held_p), _take(neg, ~held_n))
        hp, hn = _take(pos, held_p), _take(neg, held_n)
        scores = np.r_[score(trial, spec.base_language, hp["text"], hp.get("vectors")),
                       score(trial, spec.base_language, hn["text"], hn.get("vectors"))]
        labels = np.r_[np.ones(int(held_p.sum())), np.zeros(int(held_n.sum()))]
        figures = {"heldout_accuracy": accuracy(scores, labels),
                   "heldout_auc": auc(scores, labels)}
    model = _fit(spec, pos, neg)
    path = join(spec.out_dir, MODEL_FILE)
    about = {"base_language": spec.base_language, "signals": list(spec.features.names)}
    if encoder is not None:
        about["encoder"] = encoder.identity()
    save_classifier(model, path, about)
    described = {"classifier": spec.classifier, "members": list(spec.members), **figures,
                 "heldout_positives": int(held_p.sum()), "heldout_negatives": int(held_n.sum()),
                 "positives": len(positives), "negatives": len(negatives),
                 "length_match": spec.length_match, "seed": spec.seed, **about,
                 "settings": _settings(model)}
    text = json.dumps(described, indent=1).encode()
    write_atomically(path.rsplit(".", 1)[0] + ".json", lambda f: f.write(text))
    return {"path": path, **{k: v for k, v in described.items() if k != "signals"}}


def _settings(model) -> dict:
    if isinstance(model, Ensemble):
        return {**model.describe(), "C": {m: model.members_[m].C_ for m in model.members}}
    out = {"C": model.C_}
    if isinstance(model, FeatureLogistic):
        out["weights"] = model.weights()
    return out

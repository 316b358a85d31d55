"""A quality filter trained on English only, applied unchanged to French and German, against
the same filter trained in each language: test AUC per language and junk kind.

Data: ``bilingual_data.py`` (English good prose against an English generalist pool; French
and German good prose against eight kinds of junk made from real text in each language;
held-out fr/de train splits for the in-language upper bound). Scorers, each fitted on
``en_train`` (English-trained) and, for the upper bound, on ``fr_train`` or ``de_train``
(good against all junk kinds):

- random; length (in characters, and in words, which the data matches; the better of the
  two directions in each cell, so an upper bound on what length alone gives);
- features: :class:`tamis.selectors.features.FeatureLogistic` on a set of signals
  (``LANGUAGE_AGNOSTIC`` unless named), trained on English signals and scoring each
  language's texts from ``signals(texts, language)``: the stop-word share from the target
  language's own list;
- embedding: :class:`tamis.selectors.quality.EmbeddingLogistic` on multilingual USE v3
  vectors;
- ensemble: the two stacked by :class:`tamis.selectors.features.Stacker` on 3-fold
  out-of-fold scores (folds by ``fold_of`` on the record ids), members refitted on all
  rows, as ``tamis.embeddings.classifiers.Ensemble`` does.

- mean logit: the plain average of the two members' logits.

AUCs are :func:`tamis.selectors.quality.auc` on the models' logits (monotone in their
probabilities; logits keep confident scores from tying on the probability grid). "all" is
the good test set against every junk kind's test set together; "all, English kinds" against
the kinds with a counterpart among the English training negatives (navigation, keywords,
shuffled_words, repeated_lines, code), set by design before any run: the others
(shuffled_sentences, mojibake, untranslated_english) are junk the English pool has no
example of. The gap is English-trained minus in-language, per representation and language.

Feature subsets (``SUBSETS``, and "agnostic - shifted": the signals whose mean on the fr/de
train splits' good documents lies more than 0.3 English standard deviations from the English
positives' are left out): each is fitted on English and its transfer measured on the fr/de
*train* splits (the English-trained model scoring target-language train data); the
recommended subset is the one with the best mean "all" AUC there, never looked up on a test
split. "LID last" ranks every document whose foreign-language share (its letters in
paragraphs identified as another language by lid.176 with probability >= 0.5) is above 0.3
below all others. Language identification is reported on the test splits: documents
identified as their language, untranslated_english documents flagged (share > 0.3), and
good prose flagged.

    python benchmarks/bilingual_quality.py --seed 0
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bilingual_data as bd  # noqa: E402
import bilingual_models as bm  # noqa: E402
from bilingual_report import Report  # noqa: E402

from tamis.selectors.features import (  # noqa: E402
    COUNTS,
    FeatureLogistic,
    Stacker,
    fold_of,
    logit,
)
from tamis.selectors.quality import EmbeddingLogistic, auc  # noqa: E402
from tamis.selectors.signals import SIGNALS, signals  # noqa: E402

#: Every share and fraction among the signals: the candidates of the subsets below. The job's
#: own list (``LANGUAGE_AGNOSTIC``) is the subset this benchmark chose: without word length.
LANGUAGE_AGNOSTIC = tuple(s for s in SIGNALS if s not in COUNTS)
CS = (0.01, 0.1, 1.0, 10.0)
GOALS = {"gap": 0.02, "auc": 0.90}
LEXICAL = ("mean_word_length", "stop_word_ratio")
LAYOUT = ("punct_line_share", "bullet_line_share", "ellipsis_line_share", "short_line_share",
          "newline_ratio")
REPETITION = tuple(s for s in LANGUAGE_AGNOSTIC if s.startswith(("dup_", "top_")))
CHARACTERS = ("symbol_word_ratio", "alpha_word_share", "upper_ratio", "digit_ratio",
              "markup_ratio", "url_density")
SUBSETS: dict[str, tuple[str, ...]] = {
    "agnostic": LANGUAGE_AGNOSTIC,
    "agnostic - stop words": tuple(s for s in LANGUAGE_AGNOSTIC if s != "stop_word_ratio"),
    "agnostic - word length": tuple(s for s in LANGUAGE_AGNOSTIC if s != "mean_word_length"),
    "agnostic - lexical": tuple(s for s in LANGUAGE_AGNOSTIC if s not in LEXICAL),
    "layout + repetition": LAYOUT + REPETITION,
    "layout + repetition + characters": LAYOUT + REPETITION + CHARACTERS,
    "all signals (with counts)": SIGNALS,
}


@dataclass
class Part:
    """One split: texts, labels (1 good), kinds, ids, signals in its language, vectors."""

    name: str
    language: str
    texts: list[str]
    labels: np.ndarray
    kinds: list[str]
    ids: list[str]
    sig: dict[str, np.ndarray]
    vec: np.ndarray

    def take(self, mask: np.ndarray) -> Part:
        idx = np.flatnonzero(mask)
        return Part(self.name, self.language, [self.texts[i] for i in idx], self.labels[idx],
                    [self.kinds[i] for i in idx], [self.ids[i] for i in idx],
                    {k: v[idx] for k, v in self.sig.items()}, self.vec[idx])

    def halves(self) -> tuple[Part, Part]:
        return self.take(self.labels == 1), self.take(self.labels == 0)


def parts(data: dict[str, list[dict]]) -> dict[str, Part]:
    out = {}
    for name, records in data.items():
        texts = [r["text"] for r in records]
        language = records[0]["language"]
        started = time.perf_counter()
        vec = bm.encode(texts)
        out[name] = Part(name, language, texts, np.array([r["label"] for r in records]),
                         [r["kind"] for r in records], [r["id"] for r in records],
                         signals(texts, language), vec)
        print(f"{name}: {len(texts)} texts, signals and vectors in "
              f"{time.perf_counter() - started:.0f} s", flush=True)
    return out


# ---------------------------------------------------------------------------------------------
# scorers: fit(train part), then score(part) -> logits


class Features:
    def __init__(self, names, seed: int, cs=CS) -> None:
        self.names, self.seed, self.cs = tuple(names), seed, tuple(cs)

    def fit(self, train: Part) -> Features:
        pos, neg = train.halves()
        self.model = FeatureLogistic(self.cs, self.seed, language=train.language,
                                     names=self.names).fit(pos.sig, neg.sig)
        self.C_ = self.model.C_
        return self

    def score(self, part: Part) -> np.ndarray:
        return self.model.model_.decision(self.model.features(part.sig))

    def fixed(self) -> Features:
        return Features(self.names, self.seed, (self.C_,))


class Embedding:
    def __init__(self, seed: int, cs=CS) -> None:
        self.seed, self.cs = seed, tuple(cs)

    def fit(self, train: Part) -> Embedding:
        pos, neg = train.halves()
        self.model = EmbeddingLogistic(self.cs, seed=self.seed).fit(pos.vec, neg.vec)
        self.C_ = self.model.C_
        return self

    def score(self, part: Part) -> np.ndarray:
        return self.model.decision(part.vec)

    def fixed(self) -> Embedding:
        return Embedding(self.seed, (self.C_,))


class Stacked:
    """Features and embedding stacked on out-of-fold scores, as the repository's Ensemble
    does: each member's C chosen once on all rows and kept for the fold fits."""

    def __init__(self, names, seed: int, folds: int = 3) -> None:
        self.names, self.seed, self.folds = tuple(names), seed, folds

    def fit(self, train: Part) -> Stacked:
        self.members = {"features": Features(self.names, self.seed).fit(train),
                        "embedding": Embedding(self.seed).fit(train)}
        fold = fold_of(train.ids, self.folds, self.seed)
        oof = np.zeros((len(train.labels), len(self.members)))
        for j, member in enumerate(self.members.values()):
            for f in range(self.folds):
                test = fold == f
                oof[test, j] = member.fixed().fit(train.take(~test)).score(train.take(test))
        self.stacker = Stacker(list(self.members)).fit(sigmoid(oof), train.labels)
        self.weights_ = self.stacker.weights_
        return self

    def score(self, part: Part) -> np.ndarray:
        z = np.stack([m.score(part) for m in self.members.values()], axis=1)
        w = np.array([self.weights_[m] for m in self.members])
        return logit(sigmoid(z)) @ w + self.stacker.intercept_


class MeanLogit:
    def __init__(self, names, seed: int) -> None:
        self.members = (Features(names, seed), Embedding(seed))

    def fit(self, train: Part) -> MeanLogit:
        for m in self.members:
            m.fit(train)
        return self

    def score(self, part: Part) -> np.ndarray:
        return 0.5 * sum(m.score(part) for m in self.members)


class Random:
    def __init__(self, seed: int) -> None:
        self.seed = seed

    def fit(self, train: Part) -> Random:
        return self

    def score(self, part: Part) -> np.ndarray:
        return np.random.default_rng([self.seed, len(part.texts)]).random(len(part.texts))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))


# ---------------------------------------------------------------------------------------------
# evaluation


def kinds_of(part: Part) -> list[str]:
    return list(dict.fromkeys(k for k, y in zip(part.kinds, part.labels, strict=True) if y == 0))


def aucs(scores: np.ndarray, part: Part) -> dict[str, float]:
    good = part.labels == 1
    kinds = np.array(part.kinds)
    row = {k: auc(np.r_[scores[good], scores[kinds == k]],
                  np.r_[np.ones(good.sum()), np.zeros((kinds == k).sum())])
           for k in kinds_of(part)}
    row["all"] = auc(scores, part.labels)
    if part.language != "en":
        seen = good | np.isin(kinds, bd.ENGLISH_KINDS)
        row["all, English kinds"] = auc(scores[seen], part.labels[seen])
    return row


def length_aucs(part: Part, unit: str = "chars") -> dict[str, float]:
    """AUC of length alone, the better of its two directions in each cell."""
    n = np.array([len(t) if unit == "chars" else len(t.split()) for t in part.texts],
                 dtype=np.float64)
    up, down = aucs(n, part), aucs(-n, part)
    return {k: max(up[k], down[k]) for k in up}


def shifted(p: dict[str, Part], limit: float = 0.3) -> list[str]:
    """Signals whose mean on the good documents of a fr/de *train* split lies more than
    ``limit`` standard deviations (of the English training rows) from the English
    positives' mean."""
    en = p["en_train"]
    out = []
    for name in LANGUAGE_AGNOSTIC:
        sd = float(np.std(en.sig[name])) or 1.0
        base = float(np.mean(en.sig[name][en.labels == 1]))
        for lang in bd.LANGUAGES:
            part = p[f"{lang}_train"]
            if abs(np.mean(part.sig[name][part.labels == 1]) - base) / sd > limit:
                out.append(name)
                break
    return out


def lid_last(scores: np.ndarray, shares: np.ndarray) -> np.ndarray:
    span = float(scores.max() - scores.min()) + 1.0
    return np.where(shares > bm.FOREIGN, scores - span, scores)


def lid_table(p: dict[str, Part], shares: dict[str, np.ndarray]) -> tuple[dict, dict]:
    """Per language: documents identified as their language (good, junk), the foreign-share
    flag's rates; and per language and kind the same two rates."""
    out, per_kind = {}, {}
    for language in ("en", *bd.LANGUAGES):
        part = p[f"{language}_test"]
        found = np.array(bm.identify(part.texts))
        for kind in dict.fromkeys(part.kinds):
            mask = np.array(part.kinds) == kind
            per_kind[f"{language}: {kind}"] = {
                "identified as the language": float(np.mean(found[mask] == language)),
                "foreign share > 0.3": float(np.mean(shares[part.name][mask] > bm.FOREIGN))}
        good, kinds = part.labels == 1, np.array(part.kinds)
        row = {"accuracy_good": float(np.mean(found[good] == language)),
               "accuracy_junk": float(np.mean(found[~good] == language)),
               "good_foreign_rate": float(np.mean(shares[part.name][good] > bm.FOREIGN))}
        if language != "en":
            mixed = kinds == "untranslated_english"
            row["untranslated_recall"] = float(np.mean(shares[part.name][mixed] > bm.FOREIGN))
            row["untranslated_mean_share"] = float(np.mean(shares[part.name][mixed]))
            other = ~good & ~mixed
            row["other_junk_foreign_rate"] = float(np.mean(shares[part.name][other]
                                                           > bm.FOREIGN))
        out[language] = row
    return out, per_kind


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-kind", type=int, default=100)
    parser.add_argument("--good", type=int, default=600)
    parser.add_argument("--json", type=Path,
                        default=bm.CACHE / "bilingual_quality.json")
    args = parser.parse_args()
    started = time.perf_counter()
    report = Report("python benchmarks/bilingual_quality.py " + " ".join(sys.argv[1:]))
    report.line(f"backends: {bm.backends()}")
    data = bd.build(args.seed, args.per_kind, args.good)
    report.line(f"data built in {time.perf_counter() - started:.0f} s")
    report.table("data: documents per split and kind", bd.counts(data))
    p = parts(data)
    shares = {name: bm.foreign_shares(part.texts, part.language) for name, part in p.items()}
    seed = args.seed
    targets = [f"{lang}_test" for lang in ("en", *bd.LANGUAGES)]

    def evaluate(model, train: Part, on: list[str]) -> dict[str, dict[str, float]]:
        model.fit(train)
        out = {}
        for name in on:
            s = model.score(p[name])
            out[name] = aucs(s, p[name])
            out[name + " LID last"] = aucs(lid_last(s, shares[name]), p[name])
        return out

    # feature subsets: English-trained, judged on the fr/de train splits and English test
    moved = shifted(p)
    report.line(f"signals shifted by > 0.3 sd between English and fr/de train good: {moved}")
    SUBSETS["agnostic - shifted"] = tuple(s for s in LANGUAGE_AGNOSTIC if s not in moved)
    subsets = {}
    for label, names in SUBSETS.items():
        res = evaluate(Features(names, seed), p["en_train"],
                       ["en_test", *(f"{lang}_train" for lang in bd.LANGUAGES)])
        subsets[label] = {k: v["all"] for k, v in res.items() if "LID" not in k}
        subsets[label].update({f"{k}, English kinds": v["all, English kinds"]
                               for k, v in res.items() if "LID" not in k and k != "en_test"})
    chosen = max((k for k in SUBSETS if k != "all signals (with counts)"),
                 key=lambda k: np.mean([subsets[k][f"{lang}_train"] for lang in bd.LANGUAGES]))
    report.table("feature subsets, English-trained: 'all' AUC on en_test and on the fr/de "
                 f"train splits (chosen on the train splits: {chosen})", subsets)

    scorers = {"random": lambda: Random(seed),
               "features": lambda: Features(LANGUAGE_AGNOSTIC, seed),
               f"features [{chosen}]": lambda: Features(SUBSETS[chosen], seed),
               "embedding": lambda: Embedding(seed),
               "ensemble": lambda: Stacked(LANGUAGE_AGNOSTIC, seed),
               f"ensemble [{chosen}]": lambda: Stacked(SUBSETS[chosen], seed),
               "mean logit": lambda: MeanLogit(LANGUAGE_AGNOSTIC, seed)}
    results: dict[str, dict] = {
        "length (chars)": {n: length_aucs(p[n]) for n in targets},
        "length (words)": {n: length_aucs(p[n], "words") for n in targets}}
    weights = {}
    for name, make in scorers.items():
        t0 = time.perf_counter()
        model = make()
        results[name] = evaluate(model, p["en_train"], targets)
        if hasattr(model, "weights_"):
            weights[name] = model.weights_
        print(f"English-trained {name}: {time.perf_counter() - t0:.0f} s", flush=True)
    inlang: dict[str, dict] = {}
    for name in ("features", f"features [{chosen}]", "embedding", "ensemble",
                 f"ensemble [{chosen}]"):
        inlang[name] = {}
        for lang in bd.LANGUAGES:
            model = scorers[name]()
            inlang[name].update(evaluate(model, p[f"{lang}_train"], [f"{lang}_test"]))
            if hasattr(model, "weights_"):
                weights[f"{name}, {lang}_train"] = model.weights_
    report.results(results, inlang, targets, weights, GOALS)
    lid, lid_kinds = lid_table(p, shares)
    report.table("language identification (lid.176) on the test splits", lid)
    report.table("language identification per kind (test splits)", lid_kinds)
    report.line(f"total {time.perf_counter() - started:.0f} s")
    report.write(args.json, {"seed": seed, "chosen_subset": chosen, "subsets": subsets,
                             "english_trained": results, "in_language": inlang,
                             "stack_weights": weights, "backends": bm.backends(),
                             "counts": bd.counts(data), "language_id": lid,
                             "language_id_per_kind": lid_kinds})


if __name__ == "__main__":
    main()

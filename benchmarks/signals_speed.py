"""Text-quality signals: tamis's batch computation against a plain per-document reference on
the same texts, in one run, one core.

The reference computes every signal of :mod:`tamis.selectors.signals` the direct way, one
document at a time (``str.split``, ``collections.Counter`` for n-grams, a set for repeated
lines, NumPy for the sums), as a heuristic filter is usually written. The two must agree on
every value (checked: the largest absolute difference is printed); the figure is documents
per second and the ratio tamis / reference. Documents of about 300 words are made by joining
consecutive demo documents of one domain (as ``benchmarks/quality_speed.py`` does).

    python benchmarks/signals_speed.py --docs 20000 --batch 2000
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter

import numpy as np

from tamis.selectors import signals as sig

os.environ.setdefault("OMP_NUM_THREADS", "1")


def reference(text: str, language: str = "en") -> dict[str, float]:
    """Every signal of one text, computed directly."""
    words = sig.tokens(text) if not text.isascii() else text.split()
    n = len(words)
    chars = [len(w) for w in words]
    total = sum(chars)
    normal = [w.lower().strip(sig._EDGE) or w for w in words]
    lines = [s for s in (line.strip() for line in text.split("\n")) if s]
    paragraphs = [s for s in (p.strip() for p in sig._PARAGRAPH.split(text)) if s]
    letters = [c for c in text if c.isalpha()]
    stops, core = sig.stop_list(language), sig.core_stop_list(language)

    def share(count: float, of: float) -> float:
        return count / of if of else 0.0

    def repeated(parts: list[str]) -> float:
        seen, rep = set(), 0
        for p in parts:
            rep += len(p) if p in seen else 0
            seen.add(p)
        return share(rep, sum(map(len, parts)))

    out = {
        "n_words": n, "n_chars": len(text), "mean_word_length": share(total, n),
        "symbol_word_ratio": max(share(text.count("#"), n),
                                 share(text.count("...") + text.count("…"), n)),
        "alpha_word_share": share(sum(any(c.isalpha() for c in w) for w in words), n),
        "stop_words": sum(w in core for w in normal),
        "stop_word_ratio": share(sum(w in stops for w in normal), n),
        "punct_line_share": share(sum(s.endswith(sig.TERMINAL) for s in lines), len(lines)),
        "bullet_line_share": share(sum(s.startswith(sig.BULLETS) for s in lines), len(lines)),
        "ellipsis_line_share": share(sum(s.endswith(("...", "…")) for s in lines), len(lines)),
        "short_line_share": share(sum(len(s) <= sig.SHORT_LINE for s in lines), len(lines)),
        "dup_line_chars": repeated(lines), "dup_paragraph_chars": repeated(paragraphs),
        "upper_ratio": share(sum(c.isupper() for c in letters), len(letters)),
        "digit_ratio": share(sum(c.isdigit() for c in text), len(text)),
        "markup_ratio": share(sum(c in sig.MARKUP for c in text), len(text)),
        "url_density": share(sum(text.count(u) for u in ("http://", "https://", "www.")), n),
        "newline_ratio": share(text.count("\n"), n),
    }
    for k in sig.TOP_NGRAMS:
        grams = Counter(tuple(normal[i:i + k]) for i in range(n - k + 1))
        best = (0, 0)
        for gram, count in grams.items():
            if count >= 2:
                first = next(i for i in range(n - k + 1) if tuple(normal[i:i + k]) == gram)
                best = max(best, (count, sum(chars[first:first + k])))
        out[f"top_{k}gram_chars"] = share(best[0] * best[1], total)
    for k in sig.DUP_NGRAMS:
        seen, covered = set(), np.zeros(n, bool)
        for i in range(n - k + 1):
            gram = tuple(normal[i:i + k])
            if gram in seen:
                covered[i:i + k] = True
            seen.add(gram)
        out[f"dup_{k}gram_chars"] = share(float(np.dot(covered, chars)) if n else 0.0, total)
    return out


def main() -> None:
    from quality_speed import documents

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=2000)
    args = parser.parse_args()
    docs = documents(args.docs)
    words = np.mean([len(d.split()) for d in docs])
    print(f"{len(docs):,} documents, {words:.0f} words on average")
    sig.signals(docs[:10])  # the character table and stop lists, built once
    start = time.perf_counter()
    batches = [sig.signals(docs[i:i + args.batch]) for i in range(0, len(docs), args.batch)]
    tamis_s = time.perf_counter() - start
    ours = {name: np.concatenate([b[name] for b in batches]) for name in sig.SIGNALS}
    start = time.perf_counter()
    theirs = [reference(d) for d in docs]
    reference_s = time.perf_counter() - start
    worst = max(float(np.max(np.abs(ours[name] - np.array([r[name] for r in theirs]))))
                for name in sig.SIGNALS)
    print(f"tamis signals (batches of {args.batch}): {len(docs) / tamis_s:,.0f} docs/s "
          f"({tamis_s:.2f} s)")
    print(f"per-document reference: {len(docs) / reference_s:,.0f} docs/s ({reference_s:.2f} s)")
    print(f"ratio tamis / reference: {reference_s / tamis_s:.1f}x; largest difference between "
          f"the two: {worst:.2e}")


if __name__ == "__main__":
    main()

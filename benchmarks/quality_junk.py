"""A quality-filtering benchmark of real junk, length-matched to real prose, and two
afternoon-sized baseline filters to compare against.

Good text: the `python_docs` and `manpages` chunks of the demo corpus (examples/demo/corpus),
30-300 words each, in the order of a keyed blake2b hash of their text. The first of them
(enough that good train is about as large as all junk train together, at most 60% of them)
are the good set, split by a second, independent hash into train (70%) and test (30%). The
rest are the *held-out prose*: never in good train or test, it is the raw material of the
`spam` and `shuffled` junk.

Junk kinds, every one cut or derived from real text on this Debian machine (python3-doc,
manpages, manpages-dev, the GNU info manuals, dpkg's database, /usr/share/doc, /var/log):

- navigation: page furniture. The related-links bars, sidebars (local table of contents,
  previous/next topic), footers and toctree lists of the Python HTML docs
  (/usr/share/doc/python3.11/html); the node header lines, chapter titles and `* Menu:`
  blocks of the GNU info manuals (/usr/share/info/*.info*.gz, nodes split on \\x1f, index
  nodes excluded); the SEE ALSO sections of the manpages/manpages-dev pages (roff source,
  macros stripped); the navigation, table-of-contents, header and footer elements of the
  other HTML manuals under /usr/share/doc (Node.js, Valgrind, gtk-doc, ...). Each distinct
  block of HTML furniture is taken once over all pages (the Python docs repeat one footer
  on every page).
- markup: raw source. HTML files under /usr/share/doc (the Python docs and the other
  packages' HTML manuals), tags and all, and the CSS and JavaScript files shipped in
  /usr/share/{doc,javascript,gitweb,gtk-doc,sgml}.
- listings: package records and logs. /var/lib/dpkg/status records; `dpkg -l`-style tables
  made from them (one per first letter of the package name); `changelog.Debian.gz` files;
  the text logs under /var/log (compressed ones decompressed); `ls -l`-style listings of
  the /usr/share/doc directories (from os.stat, dates as "%b %e  %Y" in UTC); the file lists
  of /var/lib/dpkg/info/*.list.
- spam: real sentences of the held-out prose (6-40 words, capitalised, ending in . ! ?)
  repeated with small variations (a word dropped, doubled or swapped with its neighbour,
  shouted, exclamation marks), or keyword stuffing: 2-5 real 2-4-word phrases of those
  sentences repeated in groups joined by commas, bars or dashes, sometimes title-cased,
  with a real sentence now and then.
- keywords: lists of real index terms, newline-separated (60%) or joined by ", ", "; " or
  " | ": entries of the Python docs' general index (genindex-all.html), index entries of the
  GNU info manuals, and the NAME lines of the man pages; a contiguous run of the index (half
  the documents) or a random sample of it.
- licence: the /usr/share/doc/*/copyright files.
- shuffled: machine-shuffled text. Held-out prose documents (every other one) with their
  words put in a random order, then poured back into the original lines, each keeping its
  number of words: every word and the layout real, the order destroyed.

One probe is built beside the junk, reported but neither trained on nor counted in "all":

- reordered: the other held-out prose documents of 3 sentences or more, with their own
  sentences in a random order and poured back into the lines, each line keeping its number
  of sentences. Every sentence is real and on topic, only the order is lost. A document
  sharing a run of 8 words with a good document (boilerplate such as "For an explanation of
  the terms used in this section, see attributes(7).") is left out.

Length matching. For every kind but `shuffled` and `reordered` (whose documents come from the
same population as the good set), document lengths in words are i.i.d. draws from the good train
lengths. Sources of a kind are read in hash order and packed into streams of at least 3,000
words; a document of the drawn length is cut from the stream starting at a line start, with
the original whitespace, so newlines and indentation survive (that line structure is what
makes navigation, listings and keywords junk). Before cutting, a source paragraph (text
between blank lines) sharing a run of 8 words with a good train or test document is dropped
(the Python docs' footer quotes their licence page, which is good text). Generated kinds
(spam, keywords) are truncated to the drawn length. A rejected document (a duplicate of one
already made, or one sharing a run of 8 words with a good train or test document: its
tag-stripped text for markup) keeps its target length for the next try (up to 500 tries), so
rejection does not bend the length distribution. A kind with several sources takes documents
from them in turn. `__main__` checks that logistic regression on log word count alone scores
AUC 0.50 +- 0.05 against every kind.

Splits. Each kind is split into train and test by the same hash as the good set; train is
cut to `per_kind` documents and test to the good test size, both in hash order (navigation
and shuffled run out of source first: about 540 and 600 test documents against 861 good test
at the defaults). All text is de-duplicated across the whole benchmark. Every random draw
comes from a numpy Generator seeded by (`seed`, kind, source); hashes are blake2b keyed by
`seed`. What is on disk depends on the packages installed (and /var/log on what was done
since): the benchmark is deterministic for a given state of the machine. `build()` takes
about 20 s on 2 cores.

Baselines (what a user writes in an afternoon), each fitted on (positives, negatives) and
returning a scorer (higher = better quality):

- ngram-lr: hashed word 1-2-grams (2**20 features, no sign flipping), sublinear tf, l2 norm,
  logistic regression (C=1).
- stats-lr: 12 Gopher-style statistics (log word count, mean word length, # and ellipsis
  per word, share of words with a letter, of lines ending in punctuation, of bullet lines,
  duplicate-line character fraction, share of the 8 Gopher stop words, upper-case share of
  letters, digit share, share of other non-space symbols, newlines per word), standardised,
  logistic regression (C=1).

    python benchmarks/quality_junk.py
    python benchmarks/quality_junk.py --per-kind 1000 --seed 1
"""

from __future__ import annotations

import argparse
import math
import string
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from junk_sources import (  # noqa: E402
    copyright_files,
    dpkg_records,
    dpkg_tables,
    files,
    furniture,
    genindex_entries,
    html_files,
    html_text,
    info_index_entries,
    info_navigation,
    log_files,
    ls_listing,
    man_sections,
    name_lines,
    read,
    see_also,
    static_files,
)
from junk_text import (  # noqa: E402
    CORPUS,
    DOC,
    DPKG,
    FUNCTION_WORDS,
    GOOD_SHARE,
    KINDS,
    MAX_TRIES,
    NAV_FURNITURE,
    PROBES,
    PY_FURNITURE,
    SENTENCE_END,
    TEST_SHARE,
    Guard,
    cut,
    hash_order,
    interleave,
    keyword_maker,
    runs,
    shuffle_document,
    split,
    stream,
    truncate,
)
from quality_baselines import Fit, auc, baselines, length_only  # noqa: E402


@dataclass
class Bench:
    """Good and junk texts, split into train and test; junk keyed by kind."""

    good_train: list[str]
    good_test: list[str]
    junk_train: dict[str, list[str]]
    junk_test: dict[str, list[str]]

    def describe(self) -> str:
        rows = [("good", "train", self.good_train), ("good", "test", self.good_test)]
        for kind in self.junk_train:
            rows += [(kind, "train", self.junk_train[kind]), (kind, "test", self.junk_test[kind])]
        lines = [f"{'set':12} {'part':6} {'docs':>6} {'mean words':>11} {'newlines/doc':>13}"]
        for name, part, texts in rows:
            words = np.mean([len(t.split()) for t in texts]) if texts else 0.0
            breaks = np.mean([t.count("\n") for t in texts]) if texts else 0.0
            lines.append(f"{name:12} {part:6} {len(texts):6} {words:11.1f} {breaks:13.1f}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# making each kind


def sentences(text: str) -> list[str]:
    """Sentences of each paragraph: split after . ! ? before a capital (roughly)."""
    return [s.strip() for para in text.split("\n\n") for s in SENTENCE_END.split(para)
            if s.strip()]


def generated(make: Callable[[int], str], lengths: np.ndarray, rng: np.random.Generator,
              guard: Guard) -> Iterator[str]:
    """Texts ``make(n)`` truncated to n words, n drawn from ``lengths``, as the guard admits."""
    while True:
        n = int(rng.choice(lengths))
        for _ in range(MAX_TRIES):
            text = truncate(make(n), n)
            if len(text.split()) == n and guard.admit(text):
                yield text
                break


def spam_maker(prose: list[str], guard: Guard, rng: np.random.Generator
               ) -> Callable[[int], str]:
    pool = [s for t in prose for s in sentences(t)
            if 6 <= len(s.split()) <= 40 and s[0].isupper() and s[-1] in ".!?"
            and "\n" not in s and runs(s).isdisjoint(guard.protected)]
    pool = list(dict.fromkeys(pool))
    phrases = []
    for s in pool[:3000]:
        w = [x.strip(string.punctuation) for x in s.split()]
        for size in (2, 3, 4):
            for i in range(len(w) - size + 1):
                p = w[i:i + size]
                if (all(x.isalpha() for x in p) and p[0].lower() not in FUNCTION_WORDS
                        and p[-1].lower() not in FUNCTION_WORDS):
                    phrases.append(" ".join(p))
    phrases = list(dict.fromkeys(phrases))

    def vary(sentence: str) -> str:
        w = sentence.split()
        r = rng.random()
        if r < 0.15 and len(w) > 4:
            del w[int(rng.integers(len(w)))]
        elif r < 0.3:
            i = int(rng.integers(len(w)))
            w.insert(i, w[i])
        elif r < 0.4:
            i = int(rng.integers(len(w) - 1))
            w[i], w[i + 1] = w[i + 1], w[i]
        s = " ".join(w)
        u = rng.random()
        if u < 0.1:
            return s.upper()
        if u < 0.3:
            return s.rstrip(".!?") + str(rng.choice(["!", "!!", "!!!"]))
        return s

    def repeated(n: int) -> str:
        chosen = [pool[i] for i in rng.choice(len(pool), int(rng.integers(1, 4)), replace=False)]
        sep = str(rng.choice([" ", "\n", "\n\n"]))
        out, words = [], 0
        while words < n:
            s = vary(chosen[len(out) % len(chosen)] if rng.random() < 0.7
                     else chosen[int(rng.integers(len(chosen)))])
            out.append(s)
            words += len(s.split())
        return sep.join(out)

    def stuffed(n: int) -> str:
        chosen = [phrases[i] for i in rng.choice(len(phrases), int(rng.integers(2, 6)),
                                                   replace=False)]
        if rng.random() < 0.4:
            chosen = [p.title() for p in chosen]
        carriers = [pool[i] for i in rng.choice(len(pool), int(rng.integers(1, 3)))]
        joiner = str(rng.choice([", ", " | ", " - ", " ", " ... "]))
        sep = str(rng.choice([" ", "\n"]))
        out, words = [], 0
        while words < n:
            if rng.random() < 0.2:
                unit = carriers[int(rng.integers(len(carriers)))]
            else:
                unit = joiner.join(chosen[i] for i in rng.permutation(len(chosen)))
                unit += str(rng.choice(["", ".", "!", " -"]))
            out.append(unit)
            words += len(unit.split())
        return sep.join(out)

    return lambda n: repeated(n) if rng.random() < 0.5 else stuffed(n)


def make_kind(kind: str, prose: list[str], lengths: np.ndarray, want: int, guard: Guard,
              seed: int, pages: list[dict[str, list[str]]]) -> list[str]:
    """Up to ``want`` documents of junk ``kind``."""
    index = (*KINDS, *PROBES).index(kind)

    def rng(source: int) -> np.random.Generator:
        return np.random.default_rng([seed, index, source])

    def cuts(*sources: Iterable[str], plain: Callable[[str], str] | None = None
             ) -> list[str]:
        def accept(t: str) -> bool:
            return guard.admit(t, None if plain is None else plain(t))

        protected = guard.protected if plain is None else None
        return interleave([cut(stream(s, protected), lengths, rng(i), accept)
                           for i, s in enumerate(sources)], want)

    if kind == "navigation":
        return cuts(furniture(html_files(seed, True), PY_FURNITURE), info_navigation(seed),
                    see_also(pages), furniture(html_files(seed, False), NAV_FURNITURE))
    if kind == "markup":
        pyhtml = (read(p) for p in html_files(seed, True))
        other = (read(p) for p in html_files(seed, False))
        static = (read(p) for p in static_files(seed))
        return cuts(pyhtml, other, static, plain=lambda t: html_text(t) or t)
    if kind == "listings":
        records = dpkg_records(seed)
        changelogs = (read(p) for p in files(DOC.glob("*/changelog.Debian.gz"), seed))
        logs = (read(p) for p in log_files())
        listings = (ls_listing(d) for d in hash_order(
            (str(p) for p in DOC.iterdir() if p.is_dir() and not p.is_symlink()), seed))
        lists = (read(p) for p in files(DPKG.glob("info/*.list"), seed))
        return cuts(records, dpkg_tables(records), changelogs, logs, listings, lists)
    if kind == "licence":
        return cuts(read(p) for p in copyright_files(seed))
    if kind == "spam":
        r = rng(0)
        return interleave([generated(spam_maker(prose, guard, r), lengths, r, guard)], want)
    if kind == "keywords":
        r = rng(0)
        pools = [genindex_entries(), info_index_entries(seed), name_lines(pages)]
        return interleave([generated(keyword_maker(pools, r), lengths, r, guard)], want)
    if kind in ("shuffled", "reordered"):
        r = rng(0)
        out = []
        source = prose[0::2] if kind == "shuffled" else prose[1::2]
        for text in source:
            if kind == "reordered" and len(sentences(text)) < 3:
                continue
            doc = shuffle_document(text, r, by_sentence=kind == "reordered")
            if guard.admit(doc):
                out.append(doc)
        return out[:want]
    raise ValueError(kind)


def good_texts() -> list[str]:
    table = pq.read_table(CORPUS, columns=["text", "domain"])
    keep = pc.is_in(table.column("domain"), value_set=pa.array(["python_docs", "manpages"]))
    return list(dict.fromkeys(table.filter(keep).column("text").to_pylist()))


def build(per_kind: int = 300, seed: int = 0) -> Bench:
    """The benchmark: good train/test, and per junk kind at most ``per_kind`` train and at
    most as many test documents as good test."""
    good = hash_order(good_texts(), seed)
    n_good = min(math.ceil(len(KINDS) * per_kind / (1 - TEST_SHARE)),
                 int(GOOD_SHARE * len(good)))
    good_train, good_test = split(good[:n_good], seed)
    prose = good[n_good:]
    lengths = np.array([len(t.split()) for t in good_train])
    n_test = len(good_test)
    want = math.ceil(1.15 * max(per_kind / (1 - TEST_SHARE), n_test / TEST_SHARE))
    guard = Guard(good_train + good_test)
    pages = man_sections(seed)
    junk_train, junk_test = {}, {}
    for kind in (*KINDS, *PROBES):
        train, test = split(hash_order(make_kind(kind, prose, lengths, want, guard, seed,
                                                 pages), seed), seed)
        junk_train[kind], junk_test[kind] = train[:per_kind], test[:n_test]
    return Bench(good_train, good_test, junk_train, junk_test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-kind", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    bench = build(args.per_kind, args.seed)
    print(bench.describe())
    print(f"\nbuild: {time.perf_counter() - start:.1f} s")

    negatives = [t for texts in bench.junk_train.values() for t in texts]
    everything = [t for kind in KINDS for t in bench.junk_test[kind]]
    fits: dict[str, Fit] = {"length-only": length_only, **baselines()}
    table: dict[str, dict[str, float]] = {}
    for name, fit in fits.items():
        began = time.perf_counter()
        score = fit(bench.good_train, negatives)
        good = score(bench.good_test)
        table[name] = {kind: auc(good, score(test)) for kind, test in bench.junk_test.items()}
        table[name]["all"] = auc(good, score(everything))
        print(f"{name}: fitted and scored in {time.perf_counter() - began:.1f} s")

    print("\ntest AUC, good test against each kind's junk test (trained on good train against "
          "all junk train)")
    print(f"{'kind':12}" + "".join(f"{name:>13}" for name in fits))
    for kind in [*bench.junk_test, "all"]:
        print(f"{kind:12}" + "".join(f"{table[name][kind]:13.4f}" for name in fits))
    off = [k for k, v in table["length-only"].items() if abs(v - 0.5) > 0.05]
    print("\nlength check (length-only AUC within 0.50 +- 0.05): "
          + ("passed" if not off else "FAILED for " + ", ".join(off)))


if __name__ == "__main__":
    main()

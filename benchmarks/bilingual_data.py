"""Data of the bilingual quality benchmark: a quality filter trained on English only and applied
unchanged to French and German (Seto et al. 2025), built from real text on this machine.

English train (``en_train``): positives are quality_junk's good train set (Python docs and
man page chunks of the demo corpus, 30-300 words). Negatives are a generalist pool, as a web
crawl is: 30% English prose of the same sources (quality_junk's held-out prose, never a
positive) and 70% English junk of quality_junk's seven kinds in equal parts (page furniture,
raw markup, listings and logs, spam, keyword lists, licences, shuffled prose), every kind
length-matched to the positives by quality_junk; as many negatives as positives.
English held-out test (``en_test``): quality_junk's good test set against at most 200
documents of each kind's junk test set.

French and German (``fr_test``, ``fr_train``, ``de_test``, ``de_train``). Good prose: the
running paragraphs (one indentation, no option tags or tables, 12+ words, ending a
sentence) of the translated man pages' prose sections (DESCRIPTION/BESCHREIBUNG, NOTES,
BOGUES/FEHLER, ...; manpages-fr, manpages-de, rendered by man 100 columns wide), a paragraph
found on two pages or more (boilerplate) or left untranslated (English function words
outnumbering the language's own stop words 2:3; translations lag) left out, consecutive
paragraphs of a section joined (blank line between) until 30 words or more; for German also
the fortunes of fortunes-de of 30-300 words (pictures, recipes, lists, dialogues and chat
logs aside; wrapped lines joined, the ``-- Author`` attribution left out), at most as many as
man page documents. Each paragraph is on one line, as in the English set. Junk kinds, each
from real text of that language:

- navigation: each page's header and footer lines, name line (NOM/BEZEICHNUNG), usage
  lines, see-also list (VOIR AUSSI/SIEHE AUCH) and credits (TRADUCTION/ÜBERSETZUNG, AUTEUR,
  ...), as rendered, each block once over all pages; and the interface strings (1-4 words)
  of the gettext catalogues as menus, button rows, navigation bars and breadcrumbs.
- keywords: lists of catalogue terms (1-3 words) or of man page name lines, a run of the
  sorted list or a sample, joined by newlines, commas, semicolons or bars (quality_junk's
  keyword maker).
- shuffled_words / shuffled_sentences: a prose document's words (poured back into its
  lines) or its 2+ sentences (back into its paragraphs) in another order.
- mojibake: a prose document encoded as UTF-8 and decoded as cp1252 (60%) or Latin-1,
  wholly or a run of 30-70% of its sentences, twice in 15% of them.
- repeated_lines: a prose document's sentences a line each, one to three of them repeated
  over and over or every one stuttered two to four times.
- code: the examples sections of the man pages (prose paragraphs removed; their comments
  are in the page's language), and this machine's Python standard library, shell scripts
  and C headers (licence headers removed).
- untranslated_english: a prose document's sentences with English paragraphs making up
  30-70% of its words (before, after or between them): running paragraphs of the English man
  page of the same name (manpages, manpages-dev) when there is one, else of another,
  never sharing a run of 8 words with the demo corpus' English prose.

Length matching: every junk document's target length in words is an i.i.d. draw from the
language's good documents. Navigation and code are cut as quality_junk cuts (from a line
start, whitespace kept; a piece sharing a run of 8 words with a prose document is refused),
keywords and repeated_lines are truncated to it, untranslated_english is assembled to it.
Derived kinds (shuffled, mojibake, repeated, untranslated) are made from *raw* prose
documents, never good ones, each from the unused raw document nearest the target length
(shuffled and mojibake keep that document's length): the raw documents fit for a kind (2+
sentences, 3+ accented letters) are not a length-neutral sample.

Splits: every source unit (a man page, a fortune, a catalogue, a source file) goes to test or
train by a keyed blake2b hash of its name (half each), so that no page gives text to both. In
each split the prose documents, in hash order, are good (the first 72%, at most
``--good``) or raw (the rest; each derived kind takes them in its own order, so two kinds
may use one raw document). Each junk kind has at most ``--per-kind`` documents per split.
Every random draw comes from a numpy Generator seeded by (seed, language, split, kind).

    python benchmarks/bilingual_data.py --write /tmp/bilingual --seed 0
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bilingual_junk as bj  # noqa: E402
import bilingual_sources as src  # noqa: E402
import quality_junk as qj  # noqa: E402
from junk_sources import read  # noqa: E402
from junk_text import (  # noqa: E402
    GOOD_SHARE,
    Guard,
    cut,
    digest,
    hash_order,
    interleave,
    keyword_maker,
    runs,
    stream,
)

LANGUAGES = ("fr", "de")
KINDS = ("navigation", "keywords", "shuffled_words", "shuffled_sentences", "mojibake",
         "repeated_lines", "code", "untranslated_english")
#: The kinds with a counterpart among the English training negatives (navigation, keywords,
#: shuffled, spam, raw markup); the others are new to an English-trained filter.
ENGLISH_KINDS = ("navigation", "keywords", "shuffled_words", "repeated_lines", "code")
SPLITS = ("test", "train")
MIN_WORDS, MAX_WORDS = 30, 300
UNIT_TEST_SHARE = 0.5
GOOD_OF_PROSE = 0.72
CRAWL_PROSE = 0.3
EN_TEST_PER_KIND = 200
UI_PER_CATALOGUE = 400


def in_test(unit: str, seed: int) -> bool:
    return digest(unit, seed, b"bilingual-split") < UNIT_TEST_SHARE * 2**64


def record(text: str, language: str, label: int, kind: str) -> dict:
    h = digest(text, 0, b"bilingual-id")
    return {"id": f"{language}-{kind}-{h:016x}", "text": text, "language": language,
            "label": label, "kind": kind}


def man_documents(pages: list[src.Page], language: str) -> list[tuple[str, str]]:
    """(unit, document) of the pages' prose: paragraphs of a section joined until 30+
    words; a paragraph found on several pages, or left in English (more English function
    words than the language's own stop words, 2:3), left out."""
    count = Counter(p for page in pages for sec in src.prose_paragraphs(page) for p in set(sec))
    out = []
    for page in pages:
        for section in src.prose_paragraphs(page):
            current: list[str] = []
            for paragraph in section:
                if count[paragraph] > 1 or src.english_share(paragraph, language) > 0.4:
                    continue
                current.append(paragraph)
                words = sum(len(p.split()) for p in current)
                if words >= MIN_WORDS:
                    if words <= MAX_WORDS:
                        out.append((f"man:{page.name}", "\n\n".join(current)))
                    current = []
    return out


def fortune_documents(limit: int, seed: int) -> list[tuple[str, str]]:
    out = []
    for name, record_text in src.fortunes_de():
        text = src.reflow(record_text)
        if (text and MIN_WORDS <= len(text.split()) <= MAX_WORDS
                and src.english_share(text, "de") <= 0.4):
            words = text.split()
            if sum(any(c.isalpha() for c in w) for w in words) >= 0.8 * len(words):
                out.append((f"fortune:{name}:{digest(text, seed, b'unit'):x}", text))
    out = list(dict(out[::-1]).items())[::-1]
    order = hash_order([t for _, t in out], seed)[:limit]
    keep = set(order)
    return [(u, t) for u, t in out if t in keep]


def english_paragraphs(seed: int) -> tuple[dict[str, list[str]], list[str]]:
    """Running paragraphs of the English man pages by page name, and all of them in hash
    order; a paragraph sharing a run of 8 words with the demo corpus' prose left out."""
    protected = set().union(*map(runs, qj.good_texts()))
    by_page: dict[str, list[str]] = {}
    for page in src.pages("en"):
        paras = [p for sec in src.prose_paragraphs(page) for p in sec
                 if runs(p).isdisjoint(protected)]
        if paras:
            by_page.setdefault(page.name, []).extend(paras)
    every = hash_order({p for ps in by_page.values() for p in ps}, seed)
    return by_page, every


class EnglishSource:
    """Hands out English paragraphs, each to one document: the page's own first, then the
    pool's in hash order."""

    def __init__(self, by_page: dict[str, list[str]], every: list[str]) -> None:
        self.by_page, self.every = by_page, every
        self.used: set[str] = set()
        self.cursor = 0
        self.offered: list[str] = []

    def take(self, page: str) -> list[str]:
        offered = [p for p in self.by_page.get(page, []) if p not in self.used]
        i = self.cursor
        while sum(len(p.split()) for p in offered) < 1000 and i < len(self.every):
            if self.every[i] not in self.used and self.every[i] not in offered:
                offered.append(self.every[i])
            i += 1
        self.offered = offered
        return offered

    def mark(self, text: str) -> None:
        """The offered paragraphs whose first sentence ``text`` holds are used up."""
        for p in self.offered:
            if src.sentences(p)[0] in text:
                self.used.add(p)
        while self.cursor < len(self.every) and self.every[self.cursor] in self.used:
            self.cursor += 1


def language_split(language: str, split: str, pages: list[src.Page], documents: list,
                   catalogues: list, code: dict, lengths: np.ndarray, guard: Guard,
                   english: EnglishSource, per_kind: int, good_cap: int, seed: int
                   ) -> list[dict]:
    test = split == "test"
    own_pages = [p for p in hash_order_pages(pages, seed)
                 if in_test(f"man:{p.name}", seed) == test]
    docs = hash_order([t for u, t in documents if in_test(u, seed) == test], seed)
    unit_of = {t: u for u, t in documents}
    n_good = min(good_cap, math.ceil(GOOD_OF_PROSE * len(docs)))
    good, raw = docs[:n_good], docs[n_good:]
    cats = [(d, pairs) for d, pairs in catalogues if in_test(f"mo:{d}", seed) == test]
    files = {k: [p for p in v if in_test(f"file:{p}", seed) == test] for k, v in code.items()}
    out = [record(t, language, 1, "good") for t in good]
    base = [seed, LANGUAGES.index(language), SPLITS.index(split)]

    def rng(kind: str, source: int = 0) -> np.random.Generator:
        return np.random.default_rng([*base, KINDS.index(kind), source])

    def admit_cut(text: str) -> bool:
        return guard.admit(text)

    def cuts(kind: str, *sources) -> list[str]:
        return interleave([cut(stream(s, guard.protected), lengths, rng(kind, i), admit_cut)
                           for i, s in enumerate(sources)], per_kind)

    def unseen(text: str) -> bool:
        if text in guard.seen:
            return False
        guard.seen.add(text)
        return True

    def raw_order(kind: str) -> list[str]:
        return [raw[i] for i in rng(kind, 99).permutation(len(raw))]

    made: dict[str, list[str]] = {}
    r = rng("navigation", 9)
    ui = (bj.menus(bj.ui_items(pairs, UI_PER_CATALOGUE, r), r) for _, pairs in cats)
    made["navigation"] = cuts("navigation", bj.furniture_once(own_pages), ui)
    r = rng("keywords")
    pools = [sorted({t for _, pairs in cats for t in bj.terms(pairs)}), bj.name_lines(own_pages)]
    made["keywords"] = interleave([qj.generated(keyword_maker(pools, r), lengths, r, guard)],
                                  per_kind)
    made["code"] = cuts("code", bj.example_code(own_pages),
                        *((bj.source_text(read(p)) for p in hash_order_paths(v, seed))
                          for v in files.values()))
    for kind, make in (
            ("shuffled_words", lambda t, n, g: bj.shuffled_words(t, g)),
            ("shuffled_sentences", lambda t, n, g: bj.shuffled_sentences(t, g)),
            ("mojibake", lambda t, n, g: bj.mojibake(t, g)),
            ("repeated_lines", lambda t, n, g: bj.repeated_lines(t, n, g))):
        g = rng(kind)
        made[kind] = bj.derived(lambda t, n, make=make, g=g: make(t, n, g), raw_order(kind),
                                lengths, g, unseen, per_kind)
    g = rng("untranslated_english")

    def mixed(text: str, n: int) -> str | None:
        page = unit_of[text].removeprefix("man:")
        return bj.untranslated(text, n, lambda: english.take(page), g)

    def admit_mixed(text: str) -> bool:
        if not unseen(text):
            return False
        english.mark(text)
        return True

    made["untranslated_english"] = bj.derived(mixed, raw_order("untranslated_english"),
                                              lengths, g, admit_mixed, per_kind)
    for kind in KINDS:
        out += [record(t, language, 0, kind) for t in made[kind]]
    return out


def hash_order_pages(pages: list[src.Page], seed: int) -> list[src.Page]:
    by_name = {p.name: p for p in pages}
    return [by_name[n] for n in hash_order(by_name, seed)]


def hash_order_paths(paths: list[Path], seed: int) -> list[Path]:
    by_name = {str(p): p for p in paths}
    return [by_name[n] for n in hash_order(by_name, seed)]


def build_language(language: str, seed: int, per_kind: int, good_cap: int,
                   english: EnglishSource) -> dict[str, list[dict]]:
    pages = src.pages(language)
    documents = man_documents(pages, language)
    if language == "de":
        documents += fortune_documents(len(documents), seed)
    seen: set[str] = set()
    documents = [(u, t) for u, t in documents if not (t in seen or seen.add(t))]
    lengths = np.array([len(t.split()) for _, t in documents])
    guard = Guard([t for _, t in documents])
    catalogues = list(src.catalogues(language))
    code = src.code_files()
    return {f"{language}_{split}": language_split(
        language, split, pages, documents, catalogues, code, lengths, guard, english,
        per_kind, good_cap, seed) for split in SPLITS}


def build_english(seed: int) -> dict[str, list[dict]]:
    bench = qj.build(300, seed)
    good = hash_order(qj.good_texts(), seed)
    n_good = min(math.ceil(len(qj.KINDS) * 300 / (1 - qj.TEST_SHARE)),
                 int(GOOD_SHARE * len(good)))
    crawl_prose, _ = qj.split(good[n_good:], seed)
    n = len(bench.good_train)
    n_prose = min(round(CRAWL_PROSE * n), len(crawl_prose))
    per = (n - n_prose) / len(qj.KINDS)
    train = [record(t, "en", 1, "good") for t in bench.good_train]
    train += [record(t, "en", 0, "crawl_prose") for t in crawl_prose[:n_prose]]
    for i, kind in enumerate(qj.KINDS):
        take = round(per * (i + 1)) - round(per * i)
        train += [record(t, "en", 0, kind) for t in bench.junk_train[kind][:take]]
    test = [record(t, "en", 1, "good") for t in bench.good_test]
    for kind in qj.KINDS:
        test += [record(t, "en", 0, kind) for t in bench.junk_test[kind][:EN_TEST_PER_KIND]]
    return {"en_train": train, "en_test": test}


def build(seed: int = 0, per_kind: int = 100, good: int = 600) -> dict[str, list[dict]]:
    """Every split of the benchmark: ``en_train``, ``en_test`` and, per language,
    ``{fr,de}_{test,train}``; each a list of records {id, text, language, label, kind}."""
    out = build_english(seed)
    english = EnglishSource(*english_paragraphs(seed))
    for language in LANGUAGES:
        out.update(build_language(language, seed, per_kind, good, english))
    return out


def counts(data: dict[str, list[dict]]) -> dict[str, dict[str, int]]:
    return {name: dict(Counter(r["kind"] for r in records)) for name, records in data.items()}


def describe(data: dict[str, list[dict]]) -> str:
    table = counts(data)
    kinds = list(dict.fromkeys(k for c in table.values() for k in c))
    lines = ["| split | " + " | ".join(kinds) + " | mean words |",
             "|---" * (len(kinds) + 2) + "|"]
    for name, c in table.items():
        words = np.mean([len(r["text"].split()) for r in data[name]])
        lines.append(f"| {name} | " + " | ".join(str(c.get(k, "")) for k in kinds)
                     + f" | {words:.0f} |")
    return "\n".join(lines)


def write(data: dict[str, list[dict]], directory: Path, command: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, records in data.items():
        with (directory / f"{name}.jsonl").open("w") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    (directory / "README.md").write_text(
        f"Made by `{command}`. Records per split and kind (label 1: good, else 0):\n\n"
        + describe(data) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-kind", type=int, default=100)
    parser.add_argument("--good", type=int, default=600)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    started = time.perf_counter()
    data = build(args.seed, args.per_kind, args.good)
    print(describe(data))
    if args.write:
        write(data, args.write, "python " + " ".join(sys.argv))
    print(f"\nbuilt in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()

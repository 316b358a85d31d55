"""Markdown tables and the JSON file of ``bilingual_quality.py``."""

from __future__ import annotations

import json
from pathlib import Path


def cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


class Report:
    """Prints as it goes and keeps every table for the JSON file."""

    def __init__(self, command: str) -> None:
        self.command = command
        self.tables: dict[str, dict] = {}
        self.lines: list[str] = []
        self.line(f"command: `{command}`")

    def line(self, text: str) -> None:
        self.lines.append(text)
        print(text, flush=True)

    def table(self, title: str, rows: dict[str, dict], corner: str = "") -> None:
        columns = list(dict.fromkeys(c for row in rows.values() for c in row))
        out = [f"\n### {title}\n", f"| {corner} | " + " | ".join(columns) + " |",
               "|---" + "|---:" * len(columns) + "|"]
        for name, row in rows.items():
            out.append(f"| {name} | " + " | ".join(cell(row.get(c)) for c in columns) + " |")
        self.tables[title] = rows
        self.line("\n".join(out))

    def results(self, english: dict, inlang: dict, targets: list[str], weights: dict,
                goals: dict) -> None:
        """The overall table, one table per language and kind, the gaps and the goals."""
        views = (("all", ""), ("all, English kinds", ", English kinds"), ("all", ", LID last"))

        def summary(res: dict, t: str) -> dict[str, float]:
            lang, row = t.removesuffix("_test"), {}
            for key, suffix in views:
                source = res.get(t + " LID last" if "LID" in suffix else t, {})
                if key in source:
                    row[lang + suffix] = source[key]
            return row

        overall = {name: {k: v for t in targets for k, v in summary(res, t).items()}
                   for name, res in english.items()}
        self.table("English-trained: test AUC, good against all junk ('English kinds': the "
                   "kinds with an English counterpart; 'LID last': foreign share > 0.3 ranked "
                   "last)", overall, "scorer")
        in_rows = {f"{name} (in-lang)": {k: v for t in targets if t in res
                                         for k, v in summary(res, t).items()}
                   for name, res in inlang.items()}
        self.table("in-language upper bound: test AUC (trained on the language's train split)",
                   in_rows, "scorer")
        for t in targets:
            lang = t.removesuffix("_test")
            rows: dict[str, dict] = {}
            columns = {f"{n} (en)": res[t] for n, res in english.items()}
            columns.update({f"{n} (in-lang)": res[t] for n, res in inlang.items() if t in res})
            for col, values in columns.items():
                for kind, value in values.items():
                    rows.setdefault(kind, {})[col] = value
            trained = "" if lang == "en" else f", in-lang: trained on {lang}_train"
            self.table(f"{t}: AUC per junk kind (en: English-trained{trained})", rows, "kind")
        gaps: dict[str, dict] = {}
        verdicts = []
        for name, res in inlang.items():
            row: dict[str, float] = {}
            for t in targets:
                if t not in res:
                    continue
                mine, theirs = summary(english[name], t), summary(res, t)
                for view, en in mine.items():
                    row[f"{view}: en"], row[f"{view}: gap"] = en, en - theirs[view]
                lang = t.removesuffix("_test")
                for view in (lang, lang + ", LID last"):
                    gap, en = mine[view] - theirs[view], mine[view]
                    ok = gap >= -goals["gap"] and en >= goals["auc"]
                    verdicts.append(f"{name}, {view}: English-trained {en:.4f}, in-language "
                                    f"{theirs[view]:.4f}, gap {gap:+.4f}: "
                                    f"{'meets' if ok else 'misses'} the goal (gap >= "
                                    f"-{goals['gap']} and AUC >= {goals['auc']})")
            gaps[name] = row
        self.table("gap: English-trained minus in-language", gaps, "representation")
        for v in verdicts:
            self.line(v)
        if weights:
            self.table("stack weights (on the members' logits)", weights, "ensemble")

    def write(self, path: Path, payload: dict) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        body = {"command": self.command, **payload, "tables": self.tables,
                "output": "\n".join(self.lines)}
        path.write_text(json.dumps(body, indent=1, ensure_ascii=False))
        print(f"\nwrote {path}")

"""Heuristic quality rules: a named, versioned set of thresholds on the signals of
:mod:`tamis.selectors.signals`, after the published Gopher (Rae et al. 2021) and FineWeb /
FineWeb-2 (Penedo et al. 2024, 2025) filters. A text failing rules is dropped with the name of
the first rule it fails, in the set's order.

The set ``gopher-fineweb2-v1``:

========================  =======================  =========  ==============================
rule                      signal                   keep when  source
========================  =======================  =========  ==============================
gopher_min_words          n_words                  >= 50      Gopher
gopher_max_words          n_words                  <= 100000  Gopher
gopher_short_words        mean_word_length         >= 3       Gopher
gopher_long_words         mean_word_length         <= 10      Gopher
gopher_symbol_ratio       symbol_word_ratio        <= 0.1     Gopher
gopher_bullet_lines       bullet_line_share        <= 0.9     Gopher
gopher_ellipsis_lines     ellipsis_line_share      <= 0.3     Gopher
gopher_alpha_words        alpha_word_share         >= 0.8     Gopher
gopher_stop_words         stop_words               >= 2       Gopher
dup_line_fraction         dup_line_chars           <= 0.2     Gopher
dup_paragraph_fraction    dup_paragraph_chars      <= 0.2     Gopher
top_2gram_fraction        top_2gram_chars          <= 0.2     Gopher
top_3gram_fraction        top_3gram_chars          <= 0.18    Gopher
top_4gram_fraction        top_4gram_chars          <= 0.16    Gopher
dup_5gram_fraction …      dup_5gram_chars …        <= 0.15 …  Gopher (0.15 to 0.10 by n)
dup_10gram_fraction       dup_10gram_chars         <= 0.10    Gopher
fineweb_punct_lines       punct_line_share         >= 0.12    FineWeb
fineweb_short_lines       short_line_share         <= 0.67    FineWeb
fineweb_list_ratio        newline_ratio            <= 0.3     FineWeb-2
========================  =======================  =========  ==============================

Per-language overrides follow FineWeb-2's reasoning: in Chinese and Japanese every ideograph
is a word, so word-length rules do not apply and word counts are higher (``zh``, ``ja``).
FineWeb's ``char_duplicates_ratio`` (0.01) is left out: ``dup_line_fraction`` measures the
same thing at Gopher's threshold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from tamis.selectors.signals import DUP_NGRAMS, SIGNALS


@dataclass(frozen=True)
class Rule:
    """Keep a text when ``signal`` is at least ``low`` or at most ``high`` (one of them)."""

    name: str
    signal: str
    low: float | None = None
    high: float | None = None
    source: str = ""

    @property
    def limit(self) -> float:
        return self.low if self.low is not None else self.high

    def with_limit(self, value: float) -> Rule:
        return replace(self, low=value) if self.low is not None else replace(self, high=value)

    def fails(self, values: np.ndarray) -> np.ndarray:
        if self.low is not None:
            return values < self.low
        return values > self.high

    def describe(self) -> str:
        op = ">=" if self.low is not None else "<="
        return f"{self.signal} {op} {self.limit:g}"


DEFAULT_SET = "gopher-fineweb2-v1"

_GOPHER_FINEWEB2 = (
    Rule("gopher_min_words", "n_words", low=50, source="Gopher"),
    Rule("gopher_max_words", "n_words", high=100_000, source="Gopher"),
    Rule("gopher_short_words", "mean_word_length", low=3, source="Gopher"),
    Rule("gopher_long_words", "mean_word_length", high=10, source="Gopher"),
    Rule("gopher_symbol_ratio", "symbol_word_ratio", high=0.1, source="Gopher"),
    Rule("gopher_bullet_lines", "bullet_line_share", high=0.9, source="Gopher"),
    Rule("gopher_ellipsis_lines", "ellipsis_line_share", high=0.3, source="Gopher"),
    Rule("gopher_alpha_words", "alpha_word_share", low=0.8, source="Gopher"),
    Rule("gopher_stop_words", "stop_words", low=2, source="Gopher"),
    Rule("dup_line_fraction", "dup_line_chars", high=0.2, source="Gopher"),
    Rule("dup_paragraph_fraction", "dup_paragraph_chars", high=0.2, source="Gopher"),
    Rule("top_2gram_fraction", "top_2gram_chars", high=0.20, source="Gopher"),
    Rule("top_3gram_fraction", "top_3gram_chars", high=0.18, source="Gopher"),
    Rule("top_4gram_fraction", "top_4gram_chars", high=0.16, source="Gopher"),
    *(Rule(f"dup_{n}gram_fraction", f"dup_{n}gram_chars", high=round(0.15 - 0.01 * (n - 5), 2),
           source="Gopher") for n in DUP_NGRAMS),
    Rule("fineweb_punct_lines", "punct_line_share", low=0.12, source="FineWeb"),
    Rule("fineweb_short_lines", "short_line_share", high=0.67, source="FineWeb"),
    Rule("fineweb_list_ratio", "newline_ratio", high=0.3, source="FineWeb-2"),
)

#: Rule sets by name: the rules in order, and per-language overrides (None: the rule is off).
RULE_SETS: dict[str, tuple[tuple[Rule, ...], dict[str, dict[str, float | None]]]] = {
    DEFAULT_SET: (_GOPHER_FINEWEB2, {
        "zh": {"gopher_short_words": None, "gopher_long_words": None,
               "gopher_min_words": 100, "gopher_alpha_words": None},
        "ja": {"gopher_short_words": None, "gopher_long_words": None,
               "gopher_min_words": 100, "gopher_alpha_words": None},
    }),
}


def rule_names(name: str = DEFAULT_SET) -> tuple[str, ...]:
    return tuple(r.name for r in RULE_SETS[name][0])


def ruleset(name: str = DEFAULT_SET, language: str = "en",
            overrides: Mapping[str, float | None] | None = None) -> tuple[Rule, ...]:
    """The rules of set ``name`` for ``language``: its per-language overrides, then the
    caller's (``{rule: limit}``; ``None`` turns a rule off). Unknown names are errors."""
    if name not in RULE_SETS:
        raise ValueError(f"unknown rule set {name!r} (known: {', '.join(RULE_SETS)})")
    rules, by_language = RULE_SETS[name]
    changes = {**by_language.get(language.split("-")[0], {}), **(overrides or {})}
    known = {r.name for r in rules}
    unknown = sorted(set(overrides or {}) - known)
    if unknown:
        raise ValueError(f"unknown rule(s) {', '.join(unknown)} in set {name} (its rules: "
                         f"{', '.join(r.name for r in rules)})")
    out = []
    for rule in rules:
        if rule.name not in changes:
            out.append(rule)
        elif changes[rule.name] is not None:
            out.append(rule.with_limit(float(changes[rule.name])))
    assert all(r.signal in SIGNALS for r in out)
    return tuple(out)


def first_failure(rules: tuple[Rule, ...], values: Mapping[str, np.ndarray]) -> np.ndarray:
    """Per text, the index in ``rules`` of the first rule it fails, or -1 when it passes."""
    n = len(next(iter(values.values()))) if values else 0
    out = np.full(n, -1, dtype=np.int64)
    for i, rule in enumerate(rules):
        fresh = (out < 0) & rule.fails(values[rule.signal])
        out[fresh] = i
    return out

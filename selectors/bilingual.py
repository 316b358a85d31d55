"""The arithmetic of bilingual filtering: per-language cut-offs from histograms of grid scores,
and the mixing weights that give the target languages a share of the training tokens.

Every decision is taken from integer histograms of scores on the 2**-16 grid
(:mod:`tamis.selectors.precision`): merged in any order, on any number of workers, they give
the same cut-offs, exactly.

Mixing (Seto et al. 2024, arXiv 2411.12986): with ``E`` base-language tokens kept and ``T_l``
tokens kept in target language ``l``, a target share ``s_l`` of the training tokens asks for
the weight ``w_l = s_l F / ((1 - Σ s) T_l)`` on every kept row of ``l``, where ``F`` is the
tokens of weight 1 (the base language's and those of targets without a share), so that
``w_l T_l / (F + Σ w T) = s_l``. One share for all targets gives them one weight,
``w = s E / ((1 - s) T)``. ``w_l`` is the number of passes a trainer makes over ``l``'s data:
above a cap (16 by default, Sedova et al. 2026) repetition starts to overfit, which the report
warns about (and, when asked, the weight is capped and the share reached reported).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from tamis.selectors.precision import STEP
from tamis.selectors.quality_report import SCORE_CELLS, threshold_from_histogram

#: Languages written without spaces between words: their "words" are single ideographs or
#: whole phrases, so the mean word length means nothing the base language taught.
UNSPACED = frozenset(("zh", "ja", "yue", "wuu", "th", "lo", "km", "my", "bo"))


def neutral_signals(language: str, has_stop_list: bool) -> tuple[str, ...]:
    """The signals a classifier trained on a spaced, stop-listed language cannot read in
    ``language``: they are scored at their training mean (they add nothing)."""
    out = ("mean_word_length",) if language in UNSPACED else ()
    return out if has_stop_list else (*out, "stop_word_ratio")


#: The deciles a score distribution is summarised by in the manifest.
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


def quantiles_from_histogram(counts: np.ndarray, qs=QUANTILES) -> list[float] | None:
    """The lower quantiles of the grid scores a histogram counts; None when it is empty."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        return None
    cum = np.cumsum(counts)
    out = []
    for q in qs:
        rank = max(1, int(np.ceil(q * total)))
        out.append(float(int(np.searchsorted(cum, rank)) * STEP))
    return out


def mean_from_histogram(counts: np.ndarray) -> float | None:
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        return None
    return round(float(np.dot(counts.astype(np.float64), np.arange(len(counts)) * STEP) / total),
                 6)


def quality_cut(counts: np.ndarray, keep_top: float | None, threshold: float | None) -> float:
    """A language's quality cut-off: a fixed ``threshold``, or the score above which its top
    ``keep_top`` share of rows lie (exact on the grid; 1.0 for a language with no row)."""
    if threshold is not None:
        return float(threshold)
    if keep_top is None:
        raise ValueError("give keep_top or threshold")
    return threshold_from_histogram(counts, keep_top)


def tokens_at_or_above(tokens: np.ndarray, cut: float) -> int:
    """Tokens of the rows scoring at least ``cut``, from a histogram of tokens per cell."""
    cell = int(round(cut / STEP))
    return int(np.asarray(tokens, dtype=np.int64)[max(cell, 0):].sum())


def rows_at_or_above(counts: np.ndarray, cut: float) -> int:
    return tokens_at_or_above(counts, cut)


def mixing_weights(base_tokens: int, target_tokens: Mapping[str, int],
                   target_share: float | None = None,
                   shares: Mapping[str, float] | None = None,
                   max_passes: float = 16.0, cap: bool = False) -> dict:
    """Per-language weights giving the targets their share of the weighted training tokens.

    ``target_share``: one share for all target languages together (one weight for all);
    ``shares``: a share per language (the others keep weight 1). Returns ``weights`` (language
    → weight), ``passes`` (the same numbers read as passes over the data), ``shares_reached``,
    ``capped`` (languages whose weight was capped) and ``warnings``."""
    shares = dict(shares or {})
    if target_share is not None and shares:
        raise ValueError("give target_share or shares, not both")
    total_share = target_share if target_share is not None else sum(shares.values())
    if not 0 <= total_share < 1:
        raise ValueError(f"the target shares must add up to less than 1, got {total_share}")
    if max_passes <= 0:
        raise ValueError(f"max_passes must be > 0, got {max_passes}")
    warnings: list[str] = []
    weights = {lang: 1.0 for lang in target_tokens}
    if base_tokens <= 0:
        warnings.append("no base-language token was kept: the target share cannot be set "
                        "(every weight is 1)")
        return _report(weights, base_tokens, target_tokens, [], warnings)
    if target_share is not None:
        total = sum(target_tokens.values())
        if total <= 0:
            warnings.append("no target-language token was kept: nothing to mix")
            return _report(weights, base_tokens, target_tokens, [], warnings)
        w = target_share * base_tokens / ((1 - target_share) * total)
        weights = {lang: w for lang in target_tokens}
    else:  # the targets without a share keep weight 1 and count with the base
        fixed = base_tokens + sum(t for lang, t in target_tokens.items() if lang not in shares)
        for lang, share in sorted(shares.items()):
            kept = target_tokens.get(lang, 0)
            if kept <= 0:
                warnings.append(f"no token of '{lang}' was kept: its share of {share:.2%} "
                                f"cannot be met")
                continue
            weights[lang] = share * fixed / ((1 - total_share) * kept)
    capped = []
    for lang, w in sorted(weights.items()):
        if w > max_passes:
            verb = "capped at" if cap else "above the cap of"
            warnings.append(f"'{lang}' needs {w:.1f} passes over its kept data to reach its "
                            f"share, {verb} {max_passes:g}: repeated data overfits; keep more "
                            f"of it or lower the share")
            if cap:
                weights[lang] = float(max_passes)
                capped.append(lang)
    return _report(weights, base_tokens, target_tokens, capped, warnings)


def _report(weights: dict, base_tokens: int, target_tokens: Mapping[str, int], capped: list,
            warnings: list) -> dict:
    weighted = {lang: weights[lang] * target_tokens[lang] for lang in target_tokens}
    total = base_tokens + sum(weighted.values())
    reached = {lang: (round(weighted[lang] / total, 6) if total else None)
               for lang in sorted(target_tokens)}
    return {"weights": {k: round(v, 6) for k, v in sorted(weights.items())},
            "passes": {k: round(v, 3) for k, v in sorted(weights.items())},
            "shares_reached": reached,
            "base_share_reached": round(base_tokens / total, 6) if total else None,
            "capped": capped, "warnings": warnings}


def empty_histogram() -> np.ndarray:
    return np.zeros(SCORE_CELLS, dtype=np.int64)

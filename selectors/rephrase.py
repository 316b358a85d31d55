"""WRAP rephrasing, the parts that need no model: prompts, chunks, request identities and the
checks an output must pass (Maini et al., ACL 2024; ../docs/jobs/rephrase.md).

* :data:`STYLES`: the four WRAP instructions, word for word, and :data:`SYSTEM`, the
  Vicuna-style system text they are sent with. :func:`vicuna_prompt` renders one prompt for a
  model without a chat template; :func:`prompt_hash` names a style's prompt.
* :func:`pack_sentences`: sentences (with their token counts) packed into chunks of about a
  target number of tokens, never splitting a sentence; a short tail is merged into the chunk
  before it, and a sentence longer than the model's context is a chunk of its own, rejected.
* :func:`chunk_id`, :func:`request_id`: stable names of a chunk and of one (chunk, style,
  model, prompt, sampling, seed) request, from which a rerun knows what is already done.
* :func:`clean_output`: strips a leading meta segment ("Here is a paraphrase…:") and returns
  the text with the reason it is rejected (``empty``, ``meta_phrase``, ``qa_structure``,
  ``length_ratio``,
  ``degenerate_repetition``), or None.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. The "
          "assistant gives helpful, detailed, and polite answers to the questions.")

#: The four WRAP styles: name → instruction, as in the paper's appendix.
STYLES: dict[str, str] = {
    "easy": ("For the following paragraph give me a paraphrase of the same using a very small "
             "vocabulary and extremely simple sentences that a toddler will understand:"),
    "medium": ("For the following paragraph give me a diverse paraphrase of the same in high "
               "quality English language as in sentences on Wikipedia:"),
    "hard": ("For the following paragraph give me a paraphrase of the same using very terse "
             "and abstruse language that only an erudite scholar will understand. Replace "
             "simple words and phrases with rare and complex ones:"),
    "qa": ("Convert the following paragraph into a conversational format with multiple tags "
           "of \"Question:\" followed by \"Answer:\":"),
}

#: Reasons a (chunk, style) request ends without a rephrase, beside the backends' own
#: (``http_error``, ``retries_exhausted``, ``timeout``, ``truncated``).
OUTPUT_REASONS = ("empty", "meta_phrase", "qa_structure", "length_ratio",
                  "degenerate_repetition")


@dataclass(frozen=True)
class Style:
    """One rephrasing style: its name, its instruction and the system text sent with it."""

    name: str
    instruction: str
    system: str = SYSTEM

    def user_message(self, chunk: str) -> str:
        return f"{self.instruction}\n{chunk}"

    def messages(self, chunk: str) -> list[dict[str, str]]:
        """The chat messages of one request (for a chat template or a chat endpoint)."""
        return [{"role": "system", "content": self.system},
                {"role": "user", "content": self.user_message(chunk)}]


def vicuna_prompt(style: Style, chunk: str) -> str:
    """The prompt of a model without a chat template: Vicuna v1.1's format."""
    return f"{style.system} USER: {style.user_message(chunk)} ASSISTANT:"


def prompt_hash(style: Style, template: str) -> str:
    """16 hex digits naming a style's prompt under a template (``vicuna``, ``chat``, or the
    hash of the model's own chat template)."""
    text = json.dumps([style.name, style.system, style.instruction, template])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def wrap_styles(names: Sequence[str] = tuple(STYLES),
                custom: Mapping[str, str] | None = None, system: str = SYSTEM) -> list[Style]:
    """The styles of a job: WRAP's by name, then custom ``name → instruction`` ones."""
    custom = dict(custom or {})
    out = []
    for name in names:
        if name not in STYLES and name not in custom:
            raise ValueError(f"unknown style {name!r}: WRAP's are {', '.join(STYLES)}; "
                             f"define others under custom_styles")
        out.append(Style(name, custom.get(name, STYLES.get(name, "")), system))
    return out


def _hex(*parts: object) -> str:
    return hashlib.blake2b(json.dumps(parts).encode(), digest_size=12).hexdigest()


def chunk_id(doc_id: str, index: int) -> str:
    """A chunk's id: the same for (document id, chunk index) in every run."""
    return f"{doc_id}#{index}-{_hex('chunk', doc_id, index)[:8]}"


def request_id(chunk: str, style: str, model: str, phash: str,
               sampling: Mapping[str, object], seed: int) -> str:
    """The identity of one request: what a rerun looks for among the rows already written."""
    return _hex("request", chunk, style, model, phash, dict(sorted(sampling.items())), seed)


def pack_sentences(tokens: Sequence[int], target: int, max_tokens: int,
                   min_tokens: int) -> list[tuple[int, int, bool]]:
    """Chunks of consecutive sentences, as ``(start, end, too_long)`` (``end`` exclusive).

    A chunk grows while adding the next sentence keeps it within ``target`` tokens (a first
    sentence always goes in). A last chunk under ``min_tokens`` is merged into the one before
    it when the two fit ``max_tokens``, and is kept on its own otherwise (the caller drops it
    as ``too_short``). A chunk over ``max_tokens`` (one long sentence) is marked ``too_long``.
    """
    if not 0 < target <= max_tokens:
        raise ValueError(f"need 0 < target <= max_tokens, got {target} and {max_tokens}")
    chunks: list[list[int]] = []  # [start, end, tokens]
    for i, n in enumerate(tokens):
        if chunks and chunks[-1][2] + n <= target:
            chunks[-1][1], chunks[-1][2] = i + 1, chunks[-1][2] + n
        else:
            chunks.append([i, i + 1, n])
    if len(chunks) > 1 and chunks[-1][2] < min_tokens and (
            chunks[-2][2] + chunks[-1][2] <= max_tokens):
        tail = chunks.pop()
        chunks[-1][1], chunks[-1][2] = tail[1], chunks[-1][2] + tail[2]
    return [(s, e, n > max_tokens) for s, e, n in chunks]


_META_START = re.compile(
    r"^\s*(?:sure|certainly|of course|okay|ok)?[!,.]?\s*(?:here(?:'s| is| are)|below is|"
    r"this is)\b[^\n]{0,160}?(?:paraphras|rephras|rewrit|version|conversation|format|"
    r"question)[^\n]{0,120}?(?::|\n\s*\n)\s*", re.IGNORECASE)
_META_ANY = re.compile(
    r"\b(?:here(?:'s| is) (?:a|the|your) (?:paraphrase|rephras|rewritten|simpl)|"
    r"as an ai(?: language model)?|i (?:cannot|can't) (?:help|assist|provide)|"
    r"paraphrased version|the (?:following|above) paragraph)", re.IGNORECASE)


def strip_meta(text: str) -> str:
    """The output without a leading meta segment ending in ':' or a blank line."""
    return _META_START.sub("", text, count=1).strip()


def repetition(words: Sequence[str], n: int = 3) -> float:
    """The share of word ``n``-grams that repeat an earlier one (0 when there are none)."""
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return 0.0 if not grams else 1.0 - len(set(grams)) / len(grams)


@dataclass(frozen=True)
class OutputRules:
    """What a rephrase must satisfy: its length in words over its source's within
    ``[min_ratio, max_ratio]``, and at most ``max_repetition`` of its word 3-grams repeated.
    Q/A outputs must hold at least one ``Question:`` and one ``Answer:``."""

    min_ratio: float = 0.2
    max_ratio: float = 3.0
    max_repetition: float = 0.3

    def check(self, text: str, source: str, style: str) -> tuple[str, str | None]:
        """``(cleaned text, reason)``; the reason is None for a kept output."""
        cleaned = strip_meta(text)
        words = cleaned.split()
        if not words:
            return cleaned, "empty"
        if _META_ANY.search(cleaned):
            return cleaned, "meta_phrase"
        if style == "qa" and not ("Question:" in cleaned and "Answer:" in cleaned):
            return cleaned, "qa_structure"
        ratio = len(words) / max(1, len(source.split()))
        if not self.min_ratio <= ratio <= self.max_ratio:
            return cleaned, "length_ratio"
        if repetition([w.lower() for w in words]) > self.max_repetition:
            return cleaned, "degenerate_repetition"
        return cleaned, None


def settle(text: str, finish: str, error: str | None, source: str, style: str,
           rules: OutputRules) -> tuple[str, str | None]:
    """A generation's fate: ``(text to keep, None)`` or ``(raw text, reason)``. A backend's
    failure keeps its own reason; an output that hit ``max_tokens`` is ``truncated``."""
    if finish == "error":
        return text, error or "http_error"
    if finish == "length":
        return text, "truncated"
    cleaned, reason = rules.check(text, source, style)
    return (cleaned, None) if reason is None else (text, reason)


def mixture(real_tokens: int, style_tokens: Mapping[str, int], real: float = 1.0,
            synthetic: float = 1.0, shares: Mapping[str, float] | None = None,
            total: int | None = None) -> dict:
    """How a trainer mixes real chunks with their rephrases: token shares ``real :
    synthetic``, the synthetic part split between styles by ``shares`` (default: equal over
    the styles that have tokens), and the passes each source needs.

    Without ``total`` the mixture is the largest in which no source repeats (one source is
    read exactly once); with it, a source may need more than one pass."""
    if real < 0 or synthetic < 0 or real + synthetic <= 0:
        raise ValueError(f"the real:synthetic ratio needs non-negative parts, not both 0; "
                         f"got {real}:{synthetic}")
    if shares:
        unknown = sorted(set(shares) - set(style_tokens))
        if unknown:
            raise ValueError(f"mix shares name styles the job has not: {', '.join(unknown)}")
        weights = {s: float(shares.get(s, 0.0)) for s in style_tokens}
    else:
        weights = {s: 1.0 for s, n in style_tokens.items() if n > 0}
    if synthetic > 0 and not any(weights.values()):
        return {"total_tokens": 0, "sources": {}, "missing": sorted(style_tokens) or ["styles"]}
    norm = sum(weights.values()) or 1.0
    parts = {"real": real / (real + synthetic)}
    for s, w in weights.items():
        parts[s] = synthetic / (real + synthetic) * w / norm
    have = {"real": real_tokens, **style_tokens}
    wanted = {k: p for k, p in parts.items() if p > 0}
    if total is None:
        if any(have[k] == 0 for k in wanted):
            empty = [k for k in wanted if have[k] == 0]
            return {"total_tokens": 0, "sources": {}, "missing": empty}
        total = int(min(have[k] / p for k, p in wanted.items()))
    sources = {k: {"share": p, "tokens_available": have[k], "tokens": round(total * p),
                   "passes": (total * p / have[k]) if have[k] else None}
               for k, p in parts.items()}
    return {"total_tokens": total, "sources": sources,
            "missing": [k for k in wanted if have[k] == 0]}


_RESIDUAL = re.compile(r"paraphras|rephras|rewrit|\bhere(?:'s| is| are)\b|as an ai|"
                       r"i'm sorry|i am sorry|i (?:cannot|can't)|\bsure[,!]", re.IGNORECASE)


def residual_meta(text: str) -> bool:
    """Whether a kept output's opening still reads like a remark about the task (a looser
    test than the rejecting one, to measure what post-processing let through)."""
    return _RESIDUAL.search(text[:200]) is not None

"""Rephrasing backends: :class:`Request` values in, one :class:`Generation` per request out.

Every backend has the same four members: ``load()`` (heavy work, once per worker),
``template_used()`` (what the prompt hash names: ``vicuna``, ``chat`` for a server's own
template, or ``chat-<hash>`` for a local model's), ``run(requests)`` (one generation per
request, in order, never raising for one request's failure: a failed request comes back with
``finish == "error"`` and its reason) and ``stats()`` (counters for the manifest).

:class:`TransformersRephraser` generates with local ``transformers`` (small models, CPU or
GPU): prompts are rendered with the model's chat template when it has one (the WRAP system
text as the system message), and Vicuna's format otherwise; generation is seeded per request,
so an output depends on its request, not on the batch it was generated in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from tamis.embeddings.windows import load_tokenizer
from tamis.selectors.rephrase import Style, vicuna_prompt


@dataclass(frozen=True)
class Request:
    """One (chunk, style) to rephrase: its identity, its style, the chunk and its seed."""

    id: str
    style: Style
    chunk: str
    seed: int


#: Reasons a backend gives a request it could not complete.
BACKEND_REASONS = ("http_error", "retries_exhausted", "timeout", "refusal")


@dataclass(frozen=True)
class Generation:
    text: str
    tokens_in: int
    tokens_out: int
    finish: str  # "stop" | "length" (hit max_new_tokens: rejected as truncated) | "error"
    error: str | None = None  # one of BACKEND_REASONS when finish == "error"
    detail: str = ""  # what went wrong, for the rejects (never a secret)
    attempts: int = 1


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 512

    def as_dict(self) -> dict:
        return {"temperature": self.temperature, "top_p": self.top_p,
                "max_new_tokens": self.max_new_tokens}


def request_seed(seed: int, request: str) -> int:
    """A request's own generation seed, from the job's seed and the request's identity."""
    digest = hashlib.blake2b(f"{seed}:{request}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little")


def template_name(tokenizer, template: str, where: str) -> str:
    """``vicuna``, or ``chat-<hash>`` naming the tokenizer's own chat template, for a
    ``template`` of auto, chat or vicuna."""
    own = getattr(tokenizer, "chat_template", None)
    if template == "vicuna" or (template == "auto" and not own):
        return "vicuna"
    if not own:
        raise ValueError(f"the model in {where} has no chat template")
    return "chat-" + hashlib.sha256(own.encode()).hexdigest()[:12]


def render(tokenizer, template: str, style: Style, chunk: str) -> str:
    """One request's prompt under a :func:`template_name`."""
    if template == "vicuna":
        return vicuna_prompt(style, chunk)
    return tokenizer.apply_chat_template(style.messages(chunk), tokenize=False,
                                         add_generation_prompt=True)


class TransformersRephraser:
    """Local generation with ``transformers`` from the model folder ``model_path``."""

    def __init__(self, model_path: str, sampling: Sampling = Sampling(), device: str = "cpu",
                 template: str = "auto") -> None:
        if template not in ("auto", "chat", "vicuna"):
            raise ValueError(f"template must be auto, chat or vicuna, got {template!r}")
        self.model_path, self.sampling, self.device = model_path, sampling, device
        self.template = template
        self._model = self._tokenizer = self._template_used = None

    def load(self) -> TransformersRephraser:
        if self._model is None:
            from transformers import AutoModelForCausalLM

            self._tokenizer = load_tokenizer(self.model_path)
            self._model = AutoModelForCausalLM.from_pretrained(self.model_path).to(self.device)
            self._model.eval()
        return self

    def template_used(self) -> str:
        """``vicuna``, or ``chat-<hash>`` naming the model's own template."""
        if self._template_used is None:
            self.load()
            self._template_used = template_name(self._tokenizer, self.template, self.model_path)
        return self._template_used

    def prompt(self, style: Style, chunk: str) -> str:
        return render(self._tokenizer, self.template_used(), style, chunk)

    def stats(self) -> dict:
        return {}

    def run(self, requests: Sequence[Request]) -> list[Generation]:
        return self.generate([self.prompt(r.style, r.chunk) for r in requests],
                             [r.seed for r in requests])

    def generate(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[Generation]:
        """One generation per prompt, each under its own seed (one at a time: a padded batch
        would make an output depend on its neighbours)."""
        import torch

        self.load()
        s, tok = self.sampling, self._tokenizer
        out = []
        for prompt, seed in zip(prompts, seeds, strict=True):
            ids = tok(prompt, return_tensors="pt", add_special_tokens=False).to(self.device)
            torch.manual_seed(seed)
            with torch.no_grad():
                made = self._model.generate(
                    **ids, max_new_tokens=s.max_new_tokens, do_sample=s.temperature > 0,
                    temperature=s.temperature or None, top_p=s.top_p,
                    pad_token_id=tok.pad_token_id or tok.eos_token_id)
            new = made[0, ids["input_ids"].shape[1]:].tolist()
            ended = bool(new) and new[-1] == tok.eos_token_id
            text = tok.decode(new, skip_special_tokens=True)
            out.append(Generation(text, ids["input_ids"].shape[1], len(new),
                                  "stop" if ended or len(new) < s.max_new_tokens else "length"))
        return out


@dataclass(frozen=True)
class BackendSpec:
    """Which backend a worker builds, and with what: ``kind`` is ``transformers``, ``openai``
    or ``vllm``; ``model`` a local folder (transformers, vllm) or the name a server knows
    (openai); ``options`` the backend's own keyword arguments (never a secret: an API key is
    named by its environment variable)."""

    kind: str
    model: str
    sampling: Sampling = Sampling()
    template: str = "auto"
    options: tuple[tuple[str, object], ...] = ()

    def build(self):
        options = dict(self.options)
        if self.kind == "transformers":
            return TransformersRephraser(self.model, self.sampling, template=self.template,
                                         **options)
        if self.kind == "openai":
            from tamis.embeddings.openai_http import OpenAIRephraser

            return OpenAIRephraser(model=self.model, sampling=self.sampling, **options)
        if self.kind == "vllm":
            from tamis.embeddings.vllm_engine import VllmRephraser

            return VllmRephraser(self.model, self.sampling, template=self.template,
                                 engine=dict(options.get("engine", {})))
        raise ValueError(f"unknown rephrasing backend {self.kind!r}")

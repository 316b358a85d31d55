"""Rephrasing through any OpenAI-compatible chat-completions endpoint (vLLM, TGI, llama.cpp's
server, a hosted API), with ``aiohttp``.

:class:`OpenAIRephraser` is a backend like those of :mod:`tamis.embeddings.rephrasers`:
``run(requests)`` sends one non-streaming ``POST {base_url}/chat/completions`` per request, at
most ``concurrency`` at a time and optionally at most ``rate_limit`` attempts a second, and
returns one :class:`Generation` per request, in order, never raising for one request.

A timeout, HTTP 429, HTTP 5xx, a lost connection, a truncated body or a 200 that is not a
completion is retried after a full-jitter backoff (or the server's ``Retry-After``), up to
``max_retries`` times a request and within a retry budget shared by the whole backend, a
token bucket in the manner of gRPC's retry throttling: it holds 10 retries at first, every
request started adds ``retry_budget`` and every retry takes one, and it never holds more than
``10 + retry_budget * max(concurrency, 100)``, so a dead server costs a bounded number of calls
instead of ``max_retries`` times every request, even after a long healthy run. Which
requests an exhausted budget stops depends on timing: keep it for outages, not for answers.
Another 4xx is final (``http_error``); a retryable failure that ran out ends as ``timeout``
when the last attempt timed out and ``retries_exhausted`` otherwise. A ``finish_reason`` of
``length`` is kept as ``length``, ``content_filter`` ends as ``refusal`` and any other
(``stop``, ``eos``, none) is ``stop``.

The API key is read from the environment variable ``api_key_env`` on every ``load()`` and
``run()``, sent as a Bearer token and kept nowhere: not in the object, its stats or a detail.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

from tamis.embeddings.extras import require
from tamis.embeddings.rephrasers import Generation, Request, Sampling
from tamis.storage.errors import ModelError

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class _Failure:
    """One failed HTTP attempt: whether to retry it, what happened, and the server's wait."""

    retryable: bool
    detail: str
    timeout: bool = False
    retry_after: float | None = None


class _Bucket:
    """A token bucket of depth one: at most ``rate`` takes a second, evenly spaced."""

    def __init__(self, rate: float) -> None:
        self.rate, self.tokens, self.stamp = rate, 1.0, time.monotonic()

    async def take(self) -> None:
        while True:
            now = time.monotonic()
            self.tokens = min(1.0, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return
            await asyncio.sleep((1.0 - self.tokens) / self.rate)


class OpenAIRephraser:
    """Generation by an OpenAI-compatible server at ``base_url`` (``http://host:8000/v1``).

    ``rate_limit`` is in attempts a second (None: unlimited); ``timeout_s`` bounds one attempt;
    ``backoff_s`` and ``max_backoff_s`` shape the wait before retry ``k`` (from 0), drawn from
    ``uniform(0, min(max_backoff_s, backoff_s * 2**k))`` by a generator seeded with the
    request's seed; ``extra_body`` is merged into every request's JSON last.
    """

    def __init__(self, base_url: str, model: str,
                 sampling: Sampling = Sampling(),  # noqa: B008 (frozen, safe to share)
                 api_key_env: str | None = None, concurrency: int = 256,
                 rate_limit: float | None = None, timeout_s: float = 120.0,
                 max_retries: int = 5, retry_budget: float = 0.2, backoff_s: float = 0.5,
                 max_backoff_s: float = 30.0, seed_requests: bool = True,
                 extra_body: dict | None = None) -> None:
        for name, value, ok in (("concurrency", concurrency, concurrency >= 1),
                                ("rate_limit", rate_limit, rate_limit is None or rate_limit > 0),
                                ("timeout_s", timeout_s, timeout_s > 0),
                                ("max_retries", max_retries, max_retries >= 0),
                                ("retry_budget", retry_budget, retry_budget >= 0),
                                ("backoff_s", backoff_s, backoff_s >= 0),
                                ("max_backoff_s", max_backoff_s, max_backoff_s >= 0)):
            if not ok:
                raise ValueError(f"{name} out of range: got {value!r}")
        self.base_url, self.model, self.sampling = base_url.rstrip("/"), model, sampling
        self.api_key_env, self.concurrency, self.rate_limit = api_key_env, concurrency, rate_limit
        self.timeout_s, self.max_retries, self.retry_budget = timeout_s, max_retries, retry_budget
        self.backoff_s, self.max_backoff_s = backoff_s, max_backoff_s
        self.seed_requests, self.extra_body = seed_requests, dict(extra_body or {})
        self._started = self._attempts = self._retries = self._budget_ended = 0
        self._bucket, self._bucket_cap = 10.0, 10.0 + retry_budget * max(concurrency, 100)
        self._outcomes: Counter[str] = Counter()
        self._statuses: Counter[str] = Counter()
        self._busy_s = 0.0

    def __repr__(self) -> str:
        return f"OpenAIRephraser(base_url={self.base_url!r}, model={self.model!r})"

    def load(self) -> OpenAIRephraser:
        require("aiohttp")
        self._api_key()
        return self

    def template_used(self) -> str:
        """``chat``: the server renders the messages with its own template."""
        return "chat"

    def stats(self) -> dict:
        return {"requests": self._started, "attempts": self._attempts,
                "retries": self._retries, "retry_budget_spent": self._budget_ended,
                "outcomes": dict(sorted(self._outcomes.items())),
                "http_status": dict(sorted(self._statuses.items())),
                "busy_s": round(self._busy_s, 3)}

    def run(self, requests: Sequence[Request]) -> list[Generation]:
        self.load()
        key = self._api_key()
        start = time.monotonic()
        try:
            out = asyncio.run(self._run_all(requests, key))
        finally:
            self._busy_s += time.monotonic() - start
        for g in out:
            self._outcomes[g.error or g.finish] += 1
        return out

    def _api_key(self) -> str | None:
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise ModelError(f"the API key variable {self.api_key_env} is not set "
                             f"(api_key_env names the environment variable that holds the key)")
        return key

    def _body(self, request: Request) -> dict:
        body = {"model": self.model, "messages": request.style.messages(request.chunk),
                "temperature": self.sampling.temperature, "top_p": self.sampling.top_p,
                "max_tokens": self.sampling.max_new_tokens}
        if self.seed_requests:
            body["seed"] = request.seed
        return {**body, **self.extra_body}

    async def _run_all(self, requests: Sequence[Request], key: str | None) -> list[Generation]:
        import aiohttp

        headers = {"Authorization": f"Bearer {key}"} if key else {}
        gate = asyncio.Semaphore(self.concurrency)
        bucket = _Bucket(self.rate_limit) if self.rate_limit else None
        async with aiohttp.ClientSession(
                headers=headers, timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                connector=aiohttp.TCPConnector(limit=self.concurrency)) as session:
            jobs = [self._one(session, gate, bucket, r, key) for r in requests]
            return list(await asyncio.gather(*jobs))

    async def _one(self, session, gate: asyncio.Semaphore, bucket: _Bucket | None,
                   request: Request, key: str | None) -> Generation:
        body, jitter = self._body(request), random.Random(request.seed)
        async with gate:
            self._started += 1
            self._bucket = min(self._bucket_cap, self._bucket + self.retry_budget)
            attempt = 0
            while True:
                if bucket is not None:
                    await bucket.take()
                attempt += 1
                self._attempts += 1
                got = await self._attempt(session, body)
                if isinstance(got, Generation):
                    return replace(got, attempts=attempt)
                if not got.retryable:
                    return _failed("http_error", got.detail, attempt, key)
                reason = "timeout" if got.timeout else "retries_exhausted"
                if attempt > self.max_retries:
                    return _failed(reason, f"{got.detail}; {attempt} attempts", attempt, key)
                if self._bucket < 1.0:
                    self._budget_ended += 1
                    if self._budget_ended == 1:
                        log.warning("retry budget spent: failing requests are not retried")
                    return _failed(reason, f"{got.detail}; {attempt} attempts, retry budget "
                                           f"spent", attempt, key)
                self._retries += 1
                self._bucket -= 1.0
                ceiling = min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1))
                wait = jitter.uniform(0, ceiling)
                if got.retry_after is not None:
                    wait = min(self.max_backoff_s, got.retry_after)
                await asyncio.sleep(wait)

    async def _attempt(self, session, body: dict) -> Generation | _Failure:
        import aiohttp

        try:
            async with session.post(f"{self.base_url}/chat/completions", json=body) as resp:
                self._statuses[str(resp.status)] += 1
                raw = await resp.read()
                if resp.status == 429 or resp.status >= 500:
                    return _Failure(True, f"HTTP {resp.status}",
                                    retry_after=_seconds(resp.headers.get("Retry-After")))
                if not 200 <= resp.status < 300:
                    text = raw[:200].decode("utf-8", "replace")
                    return _Failure(False, f"HTTP {resp.status}: {text}")
                return _completion(raw)
        except TimeoutError:
            return _Failure(True, f"timeout after {self.timeout_s:g} s", timeout=True)
        except aiohttp.ClientPayloadError as e:
            return _Failure(True, f"truncated body ({type(e).__name__}: {e})")
        except aiohttp.ClientError as e:
            return _Failure(True, f"connection error ({type(e).__name__}: {e})")


def _completion(raw: bytes) -> Generation | _Failure:
    """The generation in a 200's body, or a retryable failure when it holds none."""
    try:
        data = json.loads(raw)
        choice = data["choices"][0]
        text = choice["message"].get("content") or ""
        if not isinstance(text, str):
            raise TypeError(f"content is {type(text).__name__}")
        usage = data.get("usage") or {}
        tokens = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
        reason = choice.get("finish_reason")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
        return _Failure(True, f"HTTP 200 without a completion ({type(e).__name__}: {e})")
    if reason == "content_filter":
        return Generation(text, *tokens, "error", "refusal", "finish_reason content_filter")
    return Generation(text, *tokens, "length" if reason == "length" else "stop")


def _seconds(value: str | None) -> float | None:
    """A numeric ``Retry-After`` in seconds; None for an absent, dated or negative one."""
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and seconds >= 0 else None


def _failed(reason: str, detail: str, attempts: int, key: str | None) -> Generation:
    if key:
        detail = detail.replace(key, "***")
    return Generation("", 0, 0, "error", reason, detail, attempts)

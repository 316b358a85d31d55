"""The OpenAI-compatible backend against a real server on loopback that misbehaves on purpose
(tests/http_fault_server.py): retries, final reasons, budgets, concurrency and the API key."""

from __future__ import annotations

import json
import time

import pytest
from http_fault_server import REFUSAL, FaultServer, paraphrase

from tamis.embeddings.openai_http import OpenAIRephraser
from tamis.embeddings.rephrasers import Request, Sampling
from tamis.selectors.rephrase import OutputRules, wrap_styles
from tamis.storage.errors import ModelError

MEDIUM, QA = wrap_styles(["medium", "qa"])
TEXT = ("The river floods every spring and covers the low fields. Farmers plant rice once the "
        "water has gone back. The harvest comes late in the autumn when the air is cool.")
KEY_ENV = "TAMIS_TEST_OPENAI_KEY"


def requests_for(markers, style=MEDIUM) -> list[Request]:
    """One request per marker ('' for a good one), each with its own chunk and seed."""
    return [Request(f"r{i}", style, f"{TEXT} Case {i} {marker}.".replace(" .", "."), 100 + i)
            for i, marker in enumerate(markers)]


def backend(server: FaultServer, **kwargs) -> OpenAIRephraser:
    kwargs = {"backoff_s": 0.01, "max_backoff_s": 0.05, "timeout_s": 5.0, **kwargs}
    return OpenAIRephraser(server.url, "test-model", **kwargs)


def timed(rephraser: OpenAIRephraser, requests: list[Request]):
    start = time.monotonic()
    out = rephraser.run(requests)
    return out, time.monotonic() - start


def test_good_requests_are_rephrased_in_order_with_tokens():
    reqs = requests_for(["", "", ""]) + requests_for(["", ""], QA)
    with FaultServer() as server:
        rephraser = backend(server, sampling=Sampling(0.5, 0.9, 300)).load()
        out = rephraser.run(reqs)
    assert rephraser.template_used() == "chat"
    assert len(out) == len(reqs) == server.count
    for req, gen in zip(reqs, out, strict=True):
        assert gen.text == paraphrase(req.style.user_message(req.chunk))
        assert (gen.finish, gen.error, gen.attempts) == ("stop", None, 1)
        assert gen.tokens_out == len(gen.text.split()) and gen.tokens_in > gen.tokens_out
        assert OutputRules().check(gen.text, req.chunk, req.style.name)[1] is None
    bodies = [r["body"] for r in server.requests]  # in the order they arrived
    assert {"model": "test-model", "messages": QA.messages(reqs[4].chunk), "temperature": 0.5,
            "top_p": 0.9, "max_tokens": 300, "seed": 101} in bodies
    assert all(r["authorization"] is None and r["path"] == "/v1/chat/completions"
               for r in server.requests)


def test_seed_can_be_left_out_and_extra_body_is_sent():
    with FaultServer() as server:
        backend(server, seed_requests=False, extra_body={"top_k": 20, "max_tokens": 64}).run(
            requests_for([""]))
    (body,) = [r["body"] for r in server.requests]
    assert "seed" not in body and body["top_k"] == 20 and body["max_tokens"] == 64


#: marker → (finish, error, attempts) with max_retries=2.
CASES = {
    "FAULT_500x2": ("stop", None, 3),
    "FAULT_503": ("stop", None, 2),
    "FAULT_429": ("stop", None, 2),
    "FAULT_BADJSON": ("stop", None, 2),
    "FAULT_NOCHOICE": ("stop", None, 2),
    "FAULT_TRUNCATE": ("stop", None, 2),
    "FAULT_DROP": ("stop", None, 2),
    "FAULT_NOUSAGE": ("stop", None, 1),
    "FAULT_REFUSE": ("stop", None, 1),
    "FAULT_LENGTH": ("length", None, 1),
    "FAULT_FILTER": ("error", "refusal", 1),
    "FAULT_400": ("error", "http_error", 1),
    "FAULT_500x99": ("error", "retries_exhausted", 3),
    "FAULT_TRUNCATEx99": ("error", "retries_exhausted", 3),
    "FAULT_DROPx99": ("error", "retries_exhausted", 3),
}


def test_each_fault_ends_as_documented():
    markers = ["", *CASES, ""]
    with FaultServer() as server:
        rephraser = backend(server, max_retries=2, retry_budget=1.0)
        out = rephraser.run(requests_for(markers))
    assert len(out) == len(markers)
    got = dict(zip(markers, out, strict=True))
    for marker, expected in CASES.items():
        gen = got[marker]
        assert (gen.finish, gen.error, gen.attempts) == expected, (marker, gen)
        assert server.attempts(marker + ".") == gen.attempts, marker
    assert out[0].finish == out[-1].finish == "stop" and out[0].attempts == 1
    assert got["FAULT_NOUSAGE"].tokens_in == got["FAULT_NOUSAGE"].tokens_out == 0
    assert got["FAULT_500x2"].tokens_out > 0
    assert got["FAULT_REFUSE"].text == REFUSAL
    assert OutputRules().check(REFUSAL, TEXT, "medium")[1] == "meta_phrase"
    assert got["FAULT_400"].detail.startswith("HTTP 400: {") and "max_tokens" in (
        got["FAULT_400"].detail)
    assert got["FAULT_500x99"].detail == "HTTP 500; 3 attempts"
    assert got["FAULT_TRUNCATEx99"].detail.startswith("truncated body")
    assert got["FAULT_DROPx99"].detail.startswith("connection error")
    stats = rephraser.stats()
    assert stats["requests"] == len(markers) and stats["attempts"] == server.count
    assert stats["retries"] == server.count - len(markers)
    assert stats["outcomes"] == {"stop": 11, "length": 1, "refusal": 1, "http_error": 1,
                                 "retries_exhausted": 3}
    assert stats["http_status"]["400"] == 1 and stats["http_status"]["429"] == 1
    assert stats["http_status"]["500"] == 5 and stats["retry_budget_spent"] == 0
    assert stats["busy_s"] > 0 and json.loads(json.dumps(stats)) == stats


def test_timeouts_are_retried_then_end_as_timeout():
    with FaultServer(slow_s=1.0) as server:
        rephraser = backend(server, timeout_s=0.3, max_retries=1)
        (late, dead, good), seconds = timed(
            rephraser, requests_for(["FAULT_SLOW", "FAULT_SLOWx99", ""]))
    assert (late.finish, late.attempts) == ("stop", 2)
    assert (dead.finish, dead.error, dead.attempts) == ("error", "timeout", 2)
    assert dead.detail == "timeout after 0.3 s; 2 attempts"
    assert good.finish == "stop" and seconds < 1.5


def test_retry_after_is_honoured_in_place_of_the_backoff():
    with FaultServer(retry_after="0.4") as server:
        (gen,), seconds = timed(backend(server, backoff_s=20, max_backoff_s=20),
                                requests_for(["FAULT_429"]))
    assert (gen.finish, gen.attempts) == ("stop", 2) and 0.4 <= seconds < 3


def test_retry_after_is_capped_by_max_backoff():
    with FaultServer(retry_after="60") as server:
        (gen,), seconds = timed(backend(server, max_backoff_s=0.1), requests_for(["FAULT_429"]))
    assert (gen.finish, gen.attempts) == ("stop", 2) and seconds < 2


def test_no_request_retries_more_than_max_retries():
    markers = [f"FAULT_500x99 n{i}" for i in range(5)]
    with FaultServer() as server:
        out = backend(server, max_retries=3, retry_budget=10.0).run(requests_for(markers))
    assert [g.attempts for g in out] == [4] * 5 and server.count == 20
    assert {g.error for g in out} == {"retries_exhausted"}


def test_the_retry_budget_bounds_the_calls_to_a_dead_server():
    n = 40
    with FaultServer() as server:
        rephraser = backend(server, max_retries=5, retry_budget=0.1, backoff_s=0.0)
        out = rephraser.run(requests_for([f"FAULT_500x99 n{i}" for i in range(n)]))
    stats, allowed = rephraser.stats(), 0.1 * n + 10
    assert len(out) == n and {g.error for g in out} == {"retries_exhausted"}
    assert n <= server.count == stats["attempts"] <= n + allowed
    assert stats["retries"] <= allowed and all(g.attempts <= 6 for g in out)
    assert stats["retry_budget_spent"] > 0
    assert sum("retry budget spent" in g.detail for g in out) == stats["retry_budget_spent"]


def test_a_long_healthy_run_does_not_save_up_retries_for_an_outage():
    with FaultServer() as server:
        rephraser = backend(server, max_retries=5, retry_budget=0.2, backoff_s=0.0,
                            concurrency=8)
        healthy = rephraser.run(requests_for([f"n{i}" for i in range(300)]))
        assert {g.finish for g in healthy} == {"stop"}
        rephraser.run(requests_for([f"FAULT_500x99 m{i}" for i in range(50)]))
    # 300 healthy requests would have earned 60 retries; the bucket holds at most 10 + 0.2 *
    # 100, and the 50 failing requests add 0.2 each
    assert rephraser.stats()["retries"] <= 10 + 0.2 * 100 + 0.2 * 50 < 10 + 0.2 * 350


def test_requests_overlap_up_to_the_concurrency():
    with FaultServer(delay_s=0.2) as server:
        out, seconds = timed(backend(server, concurrency=20), requests_for([""] * 20))
    assert all(g.finish == "stop" for g in out) and len(out) == 20
    assert seconds < 2.0 and server.max_in_flight >= 5


def test_concurrency_caps_the_requests_in_flight():
    with FaultServer(delay_s=0.1) as server:
        out, seconds = timed(backend(server, concurrency=2), requests_for([""] * 6))
    assert len(out) == 6 and server.max_in_flight <= 2 and seconds >= 0.3


def test_rate_limit_spaces_the_attempts():
    with FaultServer() as server:
        out, seconds = timed(backend(server, rate_limit=20), requests_for([""] * 6))
    assert len(out) == 6 and seconds >= 0.2


def test_api_key_reaches_the_server_and_nothing_else(monkeypatch):
    key = "sk-test-5e3f9a0c71d2"
    monkeypatch.setenv(KEY_ENV, key)
    markers = ["", "FAULT_401", "FAULT_400", "FAULT_500x99", "FAULT_DROPx99"]
    with FaultServer() as server:
        rephraser = backend(server, api_key_env=KEY_ENV, max_retries=1)
        out = rephraser.run(requests_for(markers))
    assert {r["authorization"] for r in server.requests} == {f"Bearer {key}"}
    assert out[1].error == "http_error" and "Incorrect API key provided: ***" in out[1].detail
    assert key not in repr(rephraser) and key not in json.dumps(rephraser.stats())
    assert key not in repr(vars(rephraser))
    assert all(key not in g.detail and key not in g.text for g in out)


def test_a_missing_key_variable_is_a_model_error_naming_it(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with FaultServer() as server:
        rephraser = backend(server, api_key_env=KEY_ENV)
        with pytest.raises(ModelError, match=KEY_ENV):
            rephraser.load()
        with pytest.raises(ModelError, match=KEY_ENV):
            rephraser.run(requests_for([""]))
    assert server.count == 0


def test_nothing_to_run_and_bad_settings():
    with FaultServer() as server:
        assert backend(server).run([]) == []
        with pytest.raises(ValueError, match="concurrency out of range: got 0"):
            backend(server, concurrency=0)
        with pytest.raises(ValueError, match="rate_limit"):
            backend(server, rate_limit=0)
    assert server.count == 0

"""An OpenAI-compatible chat-completions server on loopback that misbehaves on purpose.

``with FaultServer() as server:`` serves ``POST {server.url}/chat/completions`` from a daemon
thread. A request's behaviour depends only on its user message and on how many times that
same message has been received, so a test is reproducible in any order and at any
concurrency. A marker in the message picks a fault: ``FAULT_<NAME>`` misbehaves on the first
attempt and answers well after it; ``FAULT_<NAME>x<N>`` misbehaves on the first ``N``
(``x99``: always). ``faults`` maps further substrings of a message to such a spec
(``{"some chunk": "500x2"}``) for texts that cannot carry a marker.

======== ========================================================================
name     what the server does
======== ========================================================================
SLOW     sleeps ``slow_s`` (longer than the client's timeout), then answers
429      429 with ``Retry-After: <retry_after>``
500/503  that status with an error JSON
BADJSON  200 with a body that is not JSON
NOCHOICE 200 with JSON that holds no choices
TRUNCATE 200 whose Content-Length exceeds the bytes sent, then the connection closes
DROP     closes the connection without answering
REFUSE   200, "I'm sorry, but I can't help with that.", finish_reason ``stop``
FILTER   200, content null, finish_reason ``content_filter``
400      400 with an error JSON
401      401 whose message quotes the bearer token, as some APIs do
LENGTH   200, half the answer, finish_reason ``length``
NOUSAGE  200, the answer without ``usage``
======== ========================================================================

A good answer is a deterministic paraphrase: the chunk's sentences in reverse order, or, when
the instruction asks for ``Question:`` tags, one ``Question: ... Answer: <sentence>`` pair per
sentence; it is cut to ``max_tokens`` words (finish_reason ``length``) when longer. Tokens are
counted as words. Every request is recorded in :attr:`FaultServer.requests`.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MARKER = re.compile(r"\bFAULT_([A-Z0-9]+?)(?:x(\d+))?\b")
SPEC = re.compile(r"([A-Z0-9]+?)(?:x(\d+))?")
REFUSAL = "I'm sorry, but I can't help with that."


def paraphrase(message: str) -> str:
    """The good answer to a user message ``instruction\\nchunk``."""
    instruction, _, chunk = message.partition("\n")
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", chunk.strip()) if s]
    if "Question:" in instruction:
        return "\n".join(f"Question: What is said next?\nAnswer: {s}" for s in sentences)
    return " ".join(reversed(sentences))


def user_text(body: object) -> str:
    """The last user message of a chat-completions body ('' when there is none)."""
    messages = body.get("messages") if isinstance(body, dict) else None
    users = [m.get("content", "") for m in messages or [] if isinstance(m, dict)
             and m.get("role") == "user"]
    return str(users[-1]) if users else ""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # hundreds of clients connect at once
    owner: FaultServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args) -> None:  # quiet: tests read the records instead
        pass

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            self.server.owner.respond(self, raw)
        except OSError:  # the client left (a timeout); nothing to answer
            self.close_connection = True


class FaultServer:
    """A context manager serving at :attr:`url` (``http://127.0.0.1:PORT/v1``).

    :attr:`requests` holds one dict per request received: ``path``, ``authorization`` (the
    header as sent, or None), ``body`` (the parsed JSON, or None), ``attempt`` (of its user
    message) and ``fault`` (the fault served, or None). :attr:`max_in_flight` is the most
    requests handled at once. ``delay_s`` delays every well-behaved answer.
    """

    def __init__(self, faults: Mapping[str, str] | None = None, slow_s: float = 1.0,
                 retry_after: str = "0", delay_s: float = 0.0) -> None:
        for text, spec in (faults or {}).items():
            if not SPEC.fullmatch(spec):
                raise ValueError(f"fault spec for {text!r} must look like 500 or 500x2, "
                                 f"got {spec!r}")
        self.faults, self.slow_s = dict(faults or {}), slow_s
        self.retry_after, self.delay_s = retry_after, delay_s
        self.requests: list[dict] = []
        self.max_in_flight = 0
        self._seen: Counter[str] = Counter()
        self._in_flight = 0
        self._lock = threading.Lock()
        self._http = _Server(("127.0.0.1", 0), _Handler)
        self._http.owner = self
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._http.serve_forever, args=(0.02,),
                                        daemon=True)

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._http.shutdown()
        self._http.server_close()

    @property
    def count(self) -> int:
        return len(self.requests)

    def attempts(self, text: str) -> int:
        """How many requests had ``text`` in their user message."""
        with self._lock:
            return sum(1 for r in self.requests if text in user_text(r["body"]))

    def fault(self, message: str, attempt: int) -> str | None:
        """The fault served to the ``attempt``-th (from 1) request with this user message."""
        found = [SPEC.fullmatch(spec) for text, spec in self.faults.items() if text in message]
        found = found or [MARKER.search(message)]
        if found[0] is None:
            return None
        name, times = found[0].group(1), int(found[0].group(2) or 1)
        return name if attempt <= times else None

    def respond(self, handler: _Handler, raw: bytes) -> None:
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        message = user_text(body)
        with self._lock:
            self._seen[message] += 1
            attempt = self._seen[message]
            fault = self.fault(message, attempt)
            self.requests.append({"path": handler.path, "body": body, "attempt": attempt,
                                  "authorization": handler.headers.get("Authorization"),
                                  "fault": fault})
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            if handler.path.rstrip("/") != "/v1/chat/completions":
                _send(handler, 404, _error(f"no route {handler.path}"))
            else:
                self._serve(handler, body or {}, message, fault)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _serve(self, handler: _Handler, body: dict, message: str, fault: str | None) -> None:
        if fault is None or fault == "SLOW":
            time.sleep(self.slow_s if fault else self.delay_s)
            _send(handler, 200, _completion(body, message, paraphrase(message)))
        elif fault == "429":
            _send(handler, 429, _error("rate limited"), {"Retry-After": self.retry_after})
        elif fault in ("500", "503"):
            _send(handler, int(fault), _error(f"server error {fault}"))
        elif fault == "BADJSON":
            _send(handler, 200, b'{"id": "x", "choices": [{"message": ')
        elif fault == "NOCHOICE":
            _send(handler, 200, json.dumps({"object": "chat.completion"}).encode())
        elif fault == "TRUNCATE":
            full = _completion(body, message, paraphrase(message))
            _send(handler, 200, full[: len(full) // 2], length=len(full))
            handler.close_connection = True
        elif fault == "DROP":
            handler.close_connection = True
        elif fault == "REFUSE":
            _send(handler, 200, _completion(body, message, REFUSAL))
        elif fault == "FILTER":
            _send(handler, 200, _completion(body, message, None, finish="content_filter"))
        elif fault == "400":
            _send(handler, 400, _error("invalid request: max_tokens is too large"))
        elif fault == "401":
            token = (handler.headers.get("Authorization") or "").removeprefix("Bearer ")
            _send(handler, 401, _error(f"Incorrect API key provided: {token}"))
        elif fault == "LENGTH":
            words = paraphrase(message).split()
            text = " ".join(words[: len(words) // 2])
            _send(handler, 200, _completion(body, message, text, finish="length"))
        elif fault == "NOUSAGE":
            _send(handler, 200, _completion(body, message, paraphrase(message), usage=False))
        else:
            _send(handler, 400, _error(f"unknown fault FAULT_{fault}"))


def _completion(body: dict, message: str, text: str | None, finish: str = "stop",
                usage: bool = True) -> bytes:
    """A chat-completions response, cut to ``max_tokens`` words (``length``) when longer."""
    limit = body.get("max_tokens")
    if text and isinstance(limit, int) and len(text.split()) > limit:
        text, finish = " ".join(text.split()[:limit]), "length"
    prompt = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
    out = {"id": "chatcmpl-fault", "object": "chat.completion", "model": body.get("model"),
           "choices": [{"index": 0, "finish_reason": finish,
                        "message": {"role": "assistant", "content": text}}]}
    if usage:
        done = len((text or "").split())
        out["usage"] = {"prompt_tokens": prompt, "completion_tokens": done,
                        "total_tokens": prompt + done}
    return json.dumps(out).encode()


def _error(message: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": "invalid_request_error"}}).encode()


def _send(handler: _Handler, status: int, payload: bytes,
          headers: Mapping[str, str] | None = None, length: int | None = None) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(payload) if length is None else length))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(payload)
    handler.wfile.flush()

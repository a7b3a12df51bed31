"""A scriptable fake OpenAI-compatible chat server on 127.0.0.1 (ephemeral port, one thread).

Each request is answered by ``responder(body, attempt)``, where ``attempt`` counts the
requests seen so far for the same review (1-based), so scripts stay deterministic whatever
the client's concurrency. The default responder derives phrases from the review's words.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REVIEW_RE = re.compile(r"<review>(.*)</review>", re.S)
ITEM_RE = re.compile(r"<item>(.*)</item>", re.S)
_STOP = {"this", "that", "with", "have", "they", "them", "were", "very", "from", "just",
         "your", "will", "what", "when", "would", "there", "their", "been", "because",
         "which", "about", "really", "than", "then", "also", "some", "into", "only", "more",
         "ignore", "instruction", "instructions", "prompt", "system", "assistant",
         "jailbreak", "disregard", "override", "password", "http", "www"}


@dataclass
class Reply:
    """What the fake server does with one request."""

    status: int = 200
    content: str | None = None  # the message content; None: a deterministic valid answer
    finish_reason: str = "stop"
    headers: dict[str, str] = field(default_factory=dict)
    hang_s: float = 0.0  # sleep this long before answering (past the client's timeout)
    raw_body: bytes | None = None  # send these bytes as the HTTP body instead


def review_text(body: dict[str, Any]) -> str:
    """The fenced review (or item listing) of a request."""
    user = next(m["content"] for m in body["messages"] if m["role"] == "user")
    m = REVIEW_RE.search(user) or ITEM_RE.search(user)
    return m.group(1) if m else user


def review_key(body: dict[str, Any]) -> str:
    user = next(m["content"] for m in body["messages"] if m["role"] == "user")
    return hashlib.sha256(user.encode()).hexdigest()


def valid_answer(body: dict[str, Any]) -> dict[str, Any]:
    """A well-formed answer that is a pure function of the review text."""
    words = [w for w in re.findall(r"[a-z]+", review_text(body).lower())
             if 4 <= len(w) <= 12 and w not in _STOP]
    words += ["general", "purchase", "useful", "product"]
    pos = [f"{words[0]} {words[1]}"]
    attr = [f"{words[2]} {words[3]}"] if len(words) >= 4 else ["basic item"]
    user = next(m["content"] for m in body["messages"] if m["role"] == "user")
    if ITEM_RE.search(user):  # an item listing (prompt item_v1)
        return {"what": f"a {words[0]} product", "attr": attr, "serves": pos}
    neg = [f"{words[-1]} {words[0]}"] if len(words) % 2 else []
    return {"why": f"customer mentions {words[0]}", "pos": pos, "neg": neg, "attr": attr}


def default_responder(body: dict[str, Any], attempt: int) -> Reply:
    return Reply()


class FakeOpenAI:
    """Context manager running the server; ``base_url`` is what OpenAIConfig wants."""

    def __init__(self, responder: Callable[[dict[str, Any], int], Reply] = default_responder,
                 delay_s: float = 0.0) -> None:
        self.responder = responder
        self.delay_s = delay_s
        self.lock = threading.Lock()
        self.attempts: dict[str, int] = defaultdict(int)
        self.log: list[tuple[float, str, int]] = []  # (time, review key, status)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n))
                fake.handle(self, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def requests_for(self, key: str) -> list[tuple[float, int]]:
        with self.lock:
            return [(t, s) for t, k, s in self.log if k == key]

    @property
    def n_requests(self) -> int:
        with self.lock:
            return len(self.log)

    def handle(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        key = review_key(body)
        with self.lock:
            self.attempts[key] += 1
            attempt = self.attempts[key]
        reply = self.responder(body, attempt)
        with self.lock:
            self.log.append((time.monotonic(), key, reply.status))
        if self.delay_s:
            time.sleep(self.delay_s)
        if reply.hang_s:
            time.sleep(reply.hang_s)
        if reply.raw_body is not None:
            payload = reply.raw_body
        elif reply.status != 200:
            payload = json.dumps({"error": {"message": f"fake {reply.status}",
                                            "type": "fake", "code": reply.status}}).encode()
        else:
            content = reply.content
            if content is None:
                content = json.dumps(valid_answer(body))
            user = next(m["content"] for m in body["messages"] if m["role"] == "user")
            payload = json.dumps({
                "id": "fake-" + key[:8], "object": "chat.completion", "created": 0,
                "model": body.get("model", "fake"),
                "choices": [{"index": 0, "finish_reason": reply.finish_reason,
                             "message": {"role": "assistant", "content": content}}],
                "usage": {"prompt_tokens": len(user) // 4 + 100,
                          "completion_tokens": len(content) // 4,
                          "total_tokens": len(user) // 4 + 100 + len(content) // 4},
            }).encode()
        try:
            h.send_response(reply.status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(payload)))
            for k, v in reply.headers.items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(payload)
        except OSError:
            pass  # the client gave up (time-out): nothing to answer


def main() -> None:  # pragma: no cover - manual use: python -m tests.llm.fake_openai
    with FakeOpenAI() as f:
        print(f.base_url, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()

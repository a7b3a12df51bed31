"""Acceptance 1: the job survives every kind of server fault, through the real OpenAIBackend.

Each review gets its own script of faults (429 with Retry-After, 500, a hang past the client
time-out, invalid JSON, a truncated answer, ...). Every review ends either ok (retried to
success) or recorded as failed; the run finishes and the counts add up.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lmmrec.llm import job
from lmmrec.llm.backends import OpenAIBackend, OpenAIConfig
from lmmrec.llm.prompts import PROMPT_VERSION
from lmmrec.llm.store import Store

from .fake_openai import FakeOpenAI, Reply, review_key

MAX_RETRIES = 2  # 3 HTTP tries per call
# Long enough that a healthy answer never times out on a loaded 2-core CI machine (at 0.5 s
# one did, and was retried); only the scripted hangs may pass it.
TIMEOUT_S = 2.0
HEALTHY_TIMEOUT_S = 30.0
RETRY_AFTER_S = 1

TRUNCATED = '{"why": "liked the scent", "pos": ["pleasant sce'
E429 = Reply(status=429, headers={"Retry-After": str(RETRY_AFTER_S)})
E500 = Reply(status=500)
HANG = Reply(hang_s=TIMEOUT_S + 1.0)
BADJSON = Reply(content="Sure! Here are the motivations: pos = scent")
CUT = Reply(content=TRUNCATED, finish_reason="length")
LIST = Reply(content="[1, 2, 3]")
HTML = Reply(raw_body=b"<html><body>502 bad gateway</body></html>")

# name -> (faults before a valid answer, expected status, expected error prefix)
SCRIPTS: dict[str, tuple[list[Reply], str, str | None]] = {
    "429-retry-after": ([E429], "ok", None),
    "500-twice": ([E500, E500], "ok", None),
    "hang": ([HANG], "ok", None),
    "invalid-json-once": ([BADJSON], "ok", None),
    "truncated-once": ([CUT], "ok", None),
    "wrong-shape-once": ([LIST], "ok", None),
    "html-body-once": ([HTML], "ok", None),
    "503-then-429": ([Reply(status=503), Reply(status=429)], "ok", None),
    "500-forever": ([E500] * (MAX_RETRIES + 1), "failed", "backend: gave up"),
    "hang-forever": ([HANG] * (MAX_RETRIES + 1), "failed", "backend: gave up"),
    "invalid-json-twice": ([BADJSON, BADJSON], "failed", "invalid output"),
    "truncated-twice": ([CUT, CUT], "failed", "invalid output: answer truncated"),
    "400": ([Reply(status=400)], "failed", "backend: HTTP 400"),
    "valid": ([], "ok", None),
    "valid-2": ([], "ok", None),
}


def _distinct(inputs, n):
    out, seen = [], set()
    for inp in inputs:
        h = inp.input_hash()
        if h not in seen:
            seen.add(h)
            out.append(inp)
        if len(out) == n:
            break
    return out


def _scripted(inputs):
    """responder + {input_hash: script name} for the first len(SCRIPTS) distinct reviews."""
    chosen = _distinct(inputs, len(SCRIPTS))
    by_key, by_hash = {}, {}
    for inp, name in zip(chosen, SCRIPTS, strict=True):
        key = review_key({"messages": inp.messages()})
        by_key[key] = SCRIPTS[name][0]
        by_hash[inp.input_hash()] = name

    def responder(body, attempt):
        faults = by_key[review_key(body)]
        return faults[attempt - 1] if attempt <= len(faults) else Reply()

    return chosen, by_hash, responder


def _backend(url: str, concurrency: int, timeout_s: float = TIMEOUT_S) -> OpenAIBackend:
    return OpenAIBackend(OpenAIConfig(base_url=url, concurrency=concurrency, timeout_s=timeout_s,
                                      max_retries=MAX_RETRIES, backoff_base_s=0.01,
                                      backoff_max_s=2.0))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("concurrency", [1, 4])
def test_every_fault_ends_ok_or_failed(beauty_inputs, tmp_path: Path, concurrency: int) -> None:
    chosen, by_hash, responder = _scripted(beauty_inputs)
    n = len(chosen)
    with FakeOpenAI(responder) as fake, Store(tmp_path / "s.sqlite") as st:
        backend = _backend(fake.base_url, concurrency)
        st._bind(backend.model_id, PROMPT_VERSION)
        p = job.plan(chosen, st)
        assert len(p.todo) == n
        summary = job.run(backend, st, p)
        backend.close()

        # the run finished, and every review is accounted for exactly once
        assert summary.ok + summary.failed == n
        counts = st.counts()
        assert (counts["done"], counts["failed"] + counts["unanswered"]) == \
            (summary.ok, summary.failed)
        # the two the server never answered are not failures of their reviews
        assert counts["unanswered"] == 2
        records = {r.input_hash: r for r in st.records()}
        assert set(records) == set(by_hash)
        for h, rec in records.items():
            name = by_hash[h]
            _, status, error = SCRIPTS[name]
            assert rec.status == status, (name, rec.error)
            if status == "ok":
                assert rec.error is None and rec.parsed and rec.parsed["pos"], name
                assert json.loads(rec.raw) is not None
            else:
                assert rec.parsed is None and rec.error.startswith(error), (name, rec.error)
        expected_failed = sum(SCRIPTS[name][1] == "failed" for name in by_hash.values())
        assert summary.failed == expected_failed

        # invalid output is re-asked once (attempts == 2); transient faults stay in one attempt
        names = {by_hash[h]: r for h, r in records.items()}
        assert names["truncated-once"].attempts == 2
        assert names["invalid-json-twice"].attempts == 2
        assert names["429-retry-after"].attempts == 1
        # tokens of every answered try are counted
        assert names["truncated-once"].output_tokens > names["valid"].output_tokens / 2

        # Retry-After honoured: the retry came at least RETRY_AFTER_S after the 429
        inp = next(i for i in chosen if by_hash[i.input_hash()] == "429-retry-after")
        times = fake.requests_for(review_key({"messages": inp.messages()}))
        assert [s for _, s in times] == [429, 200]
        assert times[1][0] - times[0][0] >= RETRY_AFTER_S
        # a hang past the client time-out was abandoned and retried
        inp = next(i for i in chosen if by_hash[i.input_hash()] == "hang")
        times = fake.requests_for(review_key({"messages": inp.messages()}))
        assert len(times) == 2 and times[1][0] - times[0][0] >= TIMEOUT_S
        # a persistent 500 is tried exactly max_retries + 1 times
        inp = next(i for i in chosen if by_hash[i.input_hash()] == "500-forever")
        assert len(fake.requests_for(review_key({"messages": inp.messages()}))) == MAX_RETRIES + 1

    # a rerun skips what is done and retries only what the server never answered;
    # --retry-failed against a healthy server fixes the rest
    with FakeOpenAI() as fake, Store(tmp_path / "s.sqlite") as st:
        backend = _backend(fake.base_url, concurrency, HEALTHY_TIMEOUT_S)
        again = {by_hash[h] for h in job.plan(chosen, st).hashes}
        assert again == {"500-forever", "hang-forever"}
        p = job.plan(chosen, st, retry_failed=True)
        assert len(p.todo) == expected_failed
        summary = job.run(backend, st, p)
        backend.close()
        assert (summary.ok, summary.failed) == (expected_failed, 0)
        assert fake.n_requests == expected_failed
        assert st.counts()["done"] == n and st.counts()["failed"] == 0


def test_retry_after_http_date_and_cap() -> None:
    """Retry-After as seconds or an HTTP date; a huge value is capped at backoff_max_s."""
    import email.utils
    import time

    import httpx

    from lmmrec.llm.backends import _retry_after

    def resp(v: str) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": v})

    assert _retry_after(resp("2")) == 2.0
    assert _retry_after(resp("junk")) is None
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= _retry_after(resp(when)) <= 31

    calls = []
    with FakeOpenAI(lambda b, a: (calls.append(time.monotonic()) or
                                  Reply(status=429, headers={"Retry-After": "3600"})
                                  if a == 1 else Reply())) as fake:
        backend = OpenAIBackend(OpenAIConfig(base_url=fake.base_url, max_retries=1,
                                             backoff_base_s=0.01, backoff_max_s=0.3))
        t0 = time.monotonic()
        c = backend.complete({"messages": [{"role": "user", "content": "<review>a</review>"}]})
        backend.close()
    assert json.loads(c.text)["pos"]
    assert 0.3 <= time.monotonic() - t0 < 5


def test_backend_error_is_recorded_not_raised(beauty_inputs, tmp_path: Path) -> None:
    """A server that cannot be reached at all: every review is recorded as failed."""
    import socket

    with socket.socket() as s:  # a free port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    chosen = _distinct(beauty_inputs, 3)
    backend = OpenAIBackend(OpenAIConfig(base_url=f"http://127.0.0.1:{port}/v1", concurrency=2,
                                         timeout_s=0.5, max_retries=1, backoff_base_s=0.01))
    with Store(tmp_path / "s.sqlite", backend.model_id, PROMPT_VERSION) as st:
        summary = job.run(backend, st, job.plan(chosen, st))
        assert (summary.ok, summary.failed) == (0, 3)
        assert summary.errors == {"backend": 3}
        assert (st.counts()["failed"], st.counts()["unanswered"]) == (0, 3)
        # unanswered is not failed for good: the next run asks again without --retry-failed
        assert len(job.plan(chosen, st).todo) == 3
    backend.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("concurrency", [1, 3])
def test_server_down_stops_the_run_and_rerun_resumes(beauty_inputs, tmp_path: Path,
                                                    concurrency: int) -> None:
    """A server that stops answering mid-run: the run stops after `max_unanswered` in a row
    instead of recording the rest of the dataset as failed; a rerun finishes the job."""
    chosen = _distinct(beauty_inputs, 20)
    first = {i.input_hash() for i in chosen[:5]}
    down = {"on": False}

    def responder(body, attempt):
        return Reply(status=503) if down["on"] else Reply()

    with FakeOpenAI(responder) as fake, Store(tmp_path / "s.sqlite") as st:
        backend = _backend(fake.base_url, concurrency)
        st._bind(backend.model_id, PROMPT_VERSION)
        seen = []

        def on_result(rec):
            seen.append(rec.input_hash)
            if len(seen) == 5:
                down["on"] = True

        p = job.plan(chosen, st)
        with pytest.raises(job.ServerUnreachable, match="did not answer 4 requests in a row"):
            job.run(backend, st, p, on_result=on_result, max_unanswered=4)
        c = st.counts()
        # the ones answered before the outage are kept; the run stopped early, long before
        # the 15 others were all marked
        assert c["done"] >= 5 and c["failed"] == 0
        assert c["unanswered"] >= 4 and c["done"] + c["unanswered"] < 20
        assert first <= {r.input_hash for r in st.records("ok")}

        down["on"] = False
        p = job.plan(chosen, st)
        assert len(p.todo) == 20 - c["done"]
        summary = job.run(backend, st, p)
        backend.close()
        assert (summary.ok, summary.failed) == (20 - c["done"], 0)
        assert (st.counts()["done"], st.counts()["unanswered"]) == (20, 0)

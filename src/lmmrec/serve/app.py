"""The recommendation service: a FastAPI app over one loaded :class:`Recommender`.

The model is loaded once, before the app is built; `create_app` ranks every user's top
`max_k` items up front, and each (user, k) answer is rendered to JSON bytes once and kept,
so a warm request is a dictionary lookup. Cold start by text runs the LLM in the thread
pool (the endpoint is synchronous) so it never blocks the event loop.

Routes: GET /health, GET /users/{id}/recommendations?k=, GET /users/{id},
POST /recommendations (cold start by text), GET /items/{id}; OpenAPI docs at /docs.
Errors: unknown id 404, bad query or body 422, body over `max_body_bytes` 413,
missing or wrong `X-API-Key` (when a key is configured) 401; cold start off 501, a client
over its cold-start rate 429, every cold-start slot busy 503.
"""

from __future__ import annotations

import json
import math
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, Security
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ConfigDict, Field, model_validator

from lmmrec.errors import LmmrecError
from lmmrec.explain.coldstart import MAX_REVIEWS, BackendExtractor, ExtractionError
from lmmrec.explain.recommender import Recommender, UnknownId
from lmmrec.serve.answers import ByteCache, render_recommendations

__all__ = ["ByteCache", "RateLimiter", "ServeSettings", "create_app"]

MAX_K = 100
MAX_TEXT_CHARS = 5000


class ServeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_key: str | None = None  # None or "": no key required
    default_k: int = Field(10, ge=1, le=MAX_K)
    max_body_bytes: int = Field(64 * 1024, ge=1)
    # rendered (user, k) answers kept, least recently used out first: bounded in bytes, as
    # one answer is 0.5-55 KB and a sweep of every user and k would otherwise keep them all
    cache_bytes: int = Field(64 * 2 ** 20, ge=0)
    precompute: bool = True
    title: str = "lmmrec"
    # Cold start by text runs the LLM (GBs of memory, seconds of CPU a text): off unless
    # asked for, then at most `cold_start_concurrency` at once (503 past that) and, per
    # client (API key, else address), a token bucket of `cold_start_burst` requests refilled
    # at `cold_start_per_minute` (429 when empty).
    cold_start: bool = False
    cold_start_concurrency: int = Field(1, ge=1)
    cold_start_per_minute: float = Field(6.0, gt=0)
    cold_start_burst: int = Field(3, ge=1)
    max_texts: int = Field(5, ge=1, le=MAX_REVIEWS)  # reviews in one cold-start request


class RateLimiter:
    """Token buckets per client; the table of clients is bounded too (oldest out)."""

    def __init__(self, per_minute: float, burst: int, max_clients: int = 10_000) -> None:
        self.rate, self.burst, self.max_clients = per_minute / 60.0, float(burst), max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, client: str, now: float | None = None) -> float:
        """0 if ``client`` may go now (a token is spent), else seconds until it may."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.pop(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
            self._buckets[client] = (tokens - 1 if wait == 0 else tokens, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
            return wait


# -- schemas (responses are documented; warm answers are served pre-rendered) --------------

class MatchOut(BaseModel):
    user_phrase: str
    item_phrase: str
    similarity: float


class RecommendationOut(BaseModel):
    item: str
    title: str
    score: float
    reason: str
    matches: list[MatchOut]


class UserRecommendations(BaseModel):
    user: str
    k: int
    items: list[RecommendationOut]


class ColdStartRequest(BaseModel):
    """A new user's own reviews: `text` (one review) and/or `texts` (several)."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(None, min_length=1, max_length=MAX_TEXT_CHARS)
    texts: list[str] = Field(default_factory=list, max_length=MAX_REVIEWS)
    k: int = Field(10, ge=1, le=MAX_K)

    @model_validator(mode="after")
    def _some_text(self) -> ColdStartRequest:
        for t in self.texts:
            if len(t) > MAX_TEXT_CHARS:
                raise ValueError(f"each text must be at most {MAX_TEXT_CHARS} characters")
        if not self.all_texts():
            raise ValueError("give the new user's review(s) as 'text' or 'texts'")
        return self

    def all_texts(self) -> list[str]:
        return [t for t in ([self.text] if self.text else []) + self.texts if t.strip()]


class ColdStartOut(BaseModel):
    motivations: list[str]
    k: int
    items: list[RecommendationOut]


class PhraseWeight(BaseModel):
    phrase: str
    weight: float


class ItemOut(BaseModel):
    item: str
    title: str
    n_train_interactions: int
    motivations: list[PhraseWeight] = []
    summary: str = ""


class UserOut(BaseModel):
    user: str
    n_train_interactions: int
    motivations: list[PhraseWeight] = []
    summary: str = ""


class CacheStats(BaseModel):
    entries: int
    bytes: int
    max_bytes: int
    hits: int  # answers served from the cache since start
    misses: int  # answers computed (then kept if they fit)


class Health(BaseModel):
    status: str
    users: int
    items: int
    motivations: bool
    precomputed_k: int
    cache: CacheStats


# -- the body-size guard (pure ASGI: counts streamed bodies too) ---------------------------

class BodyLimit:
    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_bytes
            except ValueError:
                await _plain(send, 400, "invalid Content-Length")
                return
            if too_big:
                await _plain(send, 413, f"request body larger than {self.max_bytes} bytes")
                return
        state = {"seen": 0, "over": False, "sent": False}

        async def limited() -> dict:
            msg = await receive()
            if msg["type"] == "http.request" and not state["over"]:
                state["seen"] += len(msg.get("body", b""))
                if state["seen"] > self.max_bytes:  # stop reading; the answer becomes 413
                    state["over"] = True
                    return {"type": "http.request", "body": b"", "more_body": False}
            return msg

        async def guarded(msg: dict) -> None:
            if state["over"]:
                if not state["sent"]:
                    state["sent"] = True
                    await _plain(send, 413, f"request body larger than {self.max_bytes} bytes")
                return
            await send(msg)

        await self.app(scope, limited, guarded)


async def _plain(send: Any, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


# -- the app -------------------------------------------------------------------------------

@dataclass
class _Service:
    """What the routes share: the model, the settings and the answers rendered so far."""

    rec: Recommender
    settings: ServeSettings
    cache: ByteCache
    extract: Any  # text -> phrases for cold start, or None: the recommender's own
    cold_slots: threading.BoundedSemaphore
    limiter: RateLimiter
    items: dict[int, bytes] = field(default_factory=dict)  # one per item: bounded by the catalogue


def create_app(recommender: Recommender, settings: ServeSettings | None = None,
               extract: Any = None) -> FastAPI:
    """The app over a loaded recommender. ``extract`` (text -> phrases, or an LLM Backend)
    overrides the recommender's own extractor for cold start by text."""
    settings = settings or ServeSettings()
    if extract is not None and hasattr(extract, "complete"):
        extract = BackendExtractor(extract)
    rec = recommender
    if settings.precompute and rec.max_k < MAX_K:
        rec.precompute(MAX_K)
    app = FastAPI(title=settings.title, version="1",
                  description="Explained recommendations of a trained lmmrec run.")
    svc = _Service(rec, settings, ByteCache(settings.cache_bytes), extract,
                   threading.BoundedSemaphore(settings.cold_start_concurrency),
                   RateLimiter(settings.cold_start_per_minute, settings.cold_start_burst))
    app.state.recommender, app.state.settings = rec, settings
    app.state.cache = svc.cache
    header = APIKeyHeader(name="X-API-Key", auto_error=False,
                          description="required when the service is started with a key")
    auth = [Depends(_key_check(header, settings.api_key))]

    @app.exception_handler(UnknownId)
    async def _unknown(_: Request, e: UnknownId) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, status_code=404)

    _add_read_routes(app, svc, auth)
    _add_cold_start_route(app, svc, header, auth)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    return app


def _key_check(header: APIKeyHeader, api_key: str | None) -> Any:
    """The dependency that checks X-API-Key (a no-op when no key is configured)."""
    expected = (api_key or "").encode()

    async def require_key(key: str | None = Security(header)) -> None:
        if not expected:
            return
        if key is None or not secrets.compare_digest(key.encode(), expected):
            raise HTTPException(401, "missing or wrong API key (header X-API-Key)",
                                headers={"WWW-Authenticate": "APIKey"})

    return require_key


def _add_read_routes(app: FastAPI, svc: _Service, auth: list[Any]) -> None:
    """GET /health, /users/{id}/recommendations, /users/{id} and /items/{id}."""
    rec, has_motivations = svc.rec, svc.rec.profiles is not None

    @app.get("/health", response_model=Health, tags=["service"])
    async def health() -> dict[str, Any]:
        return {"status": "ok", "users": rec.ds.n_users, "items": rec.ds.n_items,
                "motivations": has_motivations, "precomputed_k": rec.max_k,
                "cache": svc.cache.stats()}

    @app.get("/users/{user_id}/recommendations", response_model=UserRecommendations,
             dependencies=auth, tags=["recommend"],
             responses={404: {"description": "unknown user"}})
    async def user_recommendations(
        user_id: str = Path(..., max_length=200),
        k: int = Query(svc.settings.default_k, ge=1, le=MAX_K, description="items to return"),
    ) -> Response:
        return _user_recommendations(svc, user_id, k)

    @app.get("/users/{user_id}", response_model=UserOut, dependencies=auth, tags=["profile"],
             responses={404: {"description": "unknown user"}})
    async def user_profile(user_id: str = Path(..., max_length=200)) -> dict[str, Any]:
        return rec.user_profile(user_id)

    @app.get("/items/{item_id}", response_model=ItemOut, dependencies=auth, tags=["profile"],
             responses={404: {"description": "unknown item"}})
    async def item(item_id: str = Path(..., max_length=200)) -> Response:
        return _item(svc, item_id)


def _user_recommendations(svc: _Service, user_id: str, k: int) -> Response:
    rec = svc.rec
    u = rec.user_index(user_id)
    key = (u, k)
    body = svc.cache.get(key)
    if body is None:
        body = render_recommendations(rec.user_ids[u], k, rec.recommend(user_id, k))
        svc.cache.put(key, body)
    return Response(body, media_type="application/json")


def _item(svc: _Service, item_id: str) -> Response:
    i = svc.rec.item_index(item_id)
    body = svc.items.get(i)
    if body is None:
        body = json.dumps(svc.rec.item_profile(item_id), ensure_ascii=False).encode()
        svc.items[i] = body
    return Response(body, media_type="application/json")


def _add_cold_start_route(app: FastAPI, svc: _Service, header: APIKeyHeader,
                          auth: list[Any]) -> None:
    """POST /recommendations: a new user's top items from the text of their reviews."""

    @app.post("/recommendations", response_model=ColdStartOut, dependencies=auth,
              tags=["recommend"],
              responses={413: {"description": "body too large"},
                         422: {"description": "invalid body, or no motivation extracted"},
                         429: {"description": "this client's rate limit is spent"},
                         501: {"description": "cold start is off (`--cold-start`), or the "
                               "run was trained without motivations"},
                         503: {"description": "every cold-start slot is busy"}})
    def cold_start(body: ColdStartRequest, request: Request,
                   key: str | None = Security(header)) -> dict[str, Any]:
        # a plain def: FastAPI runs it in its thread pool, so the LLM never blocks the loop
        return _cold_start(svc, body, request, key)


def _cold_start(svc: _Service, body: ColdStartRequest, request: Request,
                key: str | None) -> dict[str, Any]:
    """Limits first (off 501, too many texts 422, rate 429, busy 503), then the LLM."""
    settings, rec = svc.settings, svc.rec
    if not settings.cold_start:
        raise HTTPException(501, "cold start by text is off: start the service with "
                            "--cold-start")
    if not rec.supports_text:
        raise HTTPException(501, "cold start by text needs a run trained with motivations")
    texts = body.all_texts()
    if len(texts) > settings.max_texts:
        raise HTTPException(422, f"at most {settings.max_texts} texts per request, got "
                            f"{len(texts)}")
    client = f"key:{key}" if key else f"ip:{request.client.host if request.client else '?'}"
    wait = svc.limiter.take(client)
    if wait:
        raise HTTPException(429, "too many cold-start requests; retry later",
                            headers={"Retry-After": str(max(1, math.ceil(wait)))})
    if not svc.cold_slots.acquire(blocking=False):
        raise HTTPException(503, "every cold-start slot is busy; retry later",
                            headers={"Retry-After": "5"})
    try:
        phrases = rec.extract_phrases(texts, svc.extract)
        recs = rec.recommend_for_phrases(phrases, body.k)
    except ExtractionError as e:
        raise HTTPException(422, str(e)) from e
    except LmmrecError as e:
        raise HTTPException(422, str(e)) from e
    finally:
        svc.cold_slots.release()
    return {"motivations": phrases, "k": body.k, "items": [r.as_dict() for r in recs]}

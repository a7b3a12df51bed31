"""Acceptance 6: the GGUF join from part files, on small fake parts (no real model)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from lmmrec.errors import LmmrecError
from lmmrec.llm import model_files


@pytest.fixture
def parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[Path], bytes]:
    folder = tmp_path / "parts"
    folder.mkdir()
    chunks = [bytes(range(256)) * 40, b"GGUF middle part" * 1000, b"tail" * 3]
    paths = []
    for k, c in enumerate(chunks):
        p = folder / f"part{k}.bin"
        p.write_bytes(c)
        paths.append(p)
    joined = b"".join(chunks)
    monkeypatch.setenv("LMMREC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(model_files, "part_paths", lambda: list(paths))
    monkeypatch.setattr(model_files, "MODEL_SHA256", hashlib.sha256(joined).hexdigest())
    monkeypatch.setattr(model_files, "MODEL_BYTES", len(joined))
    return paths, joined


def _models(tmp_path: Path) -> list[str]:
    d = tmp_path / "cache" / "models"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def test_correct_hash_is_joined_once(parts, tmp_path: Path, monkeypatch) -> None:
    _, joined = parts
    path = model_files.local_model_path()
    assert path == tmp_path / "cache" / "models" / f"{model_files.MODEL_NAME}.gguf"
    assert path.read_bytes() == joined
    assert model_files.sha256_file(path) == model_files.MODEL_SHA256
    # only the model and its verified marker: no temporary file left behind
    assert _models(tmp_path) == [path.name, path.with_suffix(".sha256-ok").name]

    def boom() -> list[Path]:
        raise AssertionError("parts must not be read again")

    monkeypatch.setattr(model_files, "part_paths", boom)
    assert model_files.local_model_path() == path  # cached: verified marker + size


def test_wrong_hash_raises_and_leaves_no_file(parts, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(model_files, "MODEL_SHA256", "0" * 64)
    with pytest.raises(LmmrecError, match="sha256"):
        model_files.local_model_path()
    assert _models(tmp_path) == []


def test_missing_part_leaves_no_file(parts, tmp_path: Path, monkeypatch) -> None:
    paths, _ = parts
    monkeypatch.setattr(model_files, "part_paths", lambda: [*paths, paths[0].with_name("gone")])
    with pytest.raises(FileNotFoundError):
        model_files.local_model_path()
    assert _models(tmp_path) == []


def test_corrupt_or_unverified_file_is_rebuilt(parts, tmp_path: Path) -> None:
    _, joined = parts
    path = model_files.local_model_path()
    # same size, wrong bytes, marker gone (e.g. killed between replace and marker): rebuilt
    path.write_bytes(b"\0" * len(joined))
    path.with_suffix(".sha256-ok").unlink()
    assert model_files.local_model_path().read_bytes() == joined
    # a marker that vouches for another hash does not count either
    path.write_bytes(b"\1" * len(joined))
    path.with_suffix(".sha256-ok").write_text("deadbeef\n")
    assert model_files.local_model_path().read_bytes() == joined


def test_unverified_join_writes_no_marker(parts, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(model_files, "MODEL_SHA256", "0" * 64)
    path = model_files.local_model_path(verify=False)
    assert path.exists() and not path.with_suffix(".sha256-ok").exists()
    with pytest.raises(LmmrecError):  # a later verified use does not trust it
        model_files.local_model_path()
    assert _models(tmp_path) == [path.name]  # the failed re-join left nothing new


def test_missing_part_package_is_a_clear_error(monkeypatch) -> None:
    import importlib

    def no_module(name: str):
        raise ImportError(name)

    monkeypatch.setattr(importlib, "import_module", no_module)
    with pytest.raises(LmmrecError, match="model part 1 is not installed"):
        model_files.part_paths()

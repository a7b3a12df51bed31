"""`lmmrec data download`: known names only, and offline it fails fast and clearly."""

from __future__ import annotations

import time
from pathlib import Path

import pytest


def test_unknown_and_undownloadable(cli, tmp_path: Path) -> None:
    r = cli("data", "download", "nope", "--dest", tmp_path)
    assert r.code == 2 and "unknown dataset" in r.err
    r = cli("data", "download", "rlmrec-amazon", "--dest", tmp_path)
    assert r.code == 2 and "no direct download" in r.err


def test_unreachable_host_fails_fast(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lmmrec.data import catalog

    entry = catalog.KNOWN["amazon-mi-2014"]
    fake = catalog.Known(entry.subdir, entry.format, downloads=(
        ("f.json.gz", "http://127.0.0.1:9/f.json.gz", None),))
    monkeypatch.setitem(catalog.KNOWN, "amazon-mi-2014", fake)
    start = time.monotonic()
    r = cli("data", "download", "amazon-mi-2014", "--dest", tmp_path / "root")
    assert time.monotonic() - start < 8
    assert r.code == 2 and "download failed" in r.err and "offline" in r.err
    assert not (tmp_path / "root" / "amazon-mi-2014").exists()


def test_download_table_is_complete() -> None:
    from lmmrec.data.catalog import KNOWN

    for name, k in KNOWN.items():
        for fname, url, sha in k.downloads:
            assert url.startswith("http") and fname, name
            assert sha is None or len(sha) == 64

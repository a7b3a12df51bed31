"""`lmmrec data download`: verified against pinned sums, nothing left on failure, and
offline it fails at once saying where the files go. Served from a local http.server."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import socket
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lmmrec.data import catalog


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A quiet HTTP server on 127.0.0.1 serving the folder it yields."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()
    httpd.server_close()


def _entry(monkeypatch: pytest.MonkeyPatch, name: str, **kw: object) -> None:
    k = catalog.KNOWN[name]
    monkeypatch.setitem(catalog.KNOWN, name, catalog.Known(k.subdir, k.format, **kw))


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_unknown_name(cli, tmp_path: Path) -> None:
    r = cli("data", "download", "nope", "--dest", tmp_path)
    assert r.code == 2 and "unknown dataset" in r.err


def test_checksum_ok(cli, server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url, www = server
    (www / "a.json.gz").write_bytes(b"first file")
    (www / "b.json.gz").write_bytes(b"second file")
    _entry(monkeypatch, "steam-au", downloads=(
        ("a.json.gz", f"{url}/a.json.gz", _sha(b"first file")),
        ("b.json.gz", f"{url}/b.json.gz", None)))
    r = cli("data", "download", "steam-au", "--dest", tmp_path / "root")
    assert r.code == 0, r.err
    got = tmp_path / "root" / "steam-au"
    assert (got / "a.json.gz").read_bytes() == b"first file"
    assert (got / "b.json.gz").read_bytes() == b"second file"
    assert "(verified)" in r.err and "(not pinned)" in r.err
    assert _leftovers(tmp_path / "root") == ["steam-au"]
    r = cli("data", "download", "steam-au", "--dest", tmp_path / "root")
    assert r.code == 2 and "already present" in r.err


def test_checksum_mismatch_leaves_nothing(cli, server, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    url, www = server
    (www / "a.json.gz").write_bytes(b"good")
    (www / "b.json.gz").write_bytes(b"tampered")
    _entry(monkeypatch, "steam-au", downloads=(
        ("a.json.gz", f"{url}/a.json.gz", _sha(b"good")),
        ("b.json.gz", f"{url}/b.json.gz", _sha(b"original"))))
    r = cli("data", "download", "steam-au", "--dest", tmp_path / "root")
    assert r.code == 2
    assert "checksum mismatch" in r.err and _sha(b"original") in r.err
    assert r.err.strip().splitlines()[-1].startswith("error: ")  # one line, after progress
    assert _leftovers(tmp_path / "root") == []


def test_missing_file_on_server(cli, server, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    url, _ = server
    _entry(monkeypatch, "steam-au", downloads=(("a.json.gz", f"{url}/gone.json.gz", None),))
    r = cli("data", "download", "steam-au", "--dest", tmp_path / "root")
    assert r.code == 2 and "HTTP 404" in r.err
    assert _leftovers(tmp_path / "root") == []


def test_offline_fails_at_once_saying_where_files_go(cli, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # a loopback port just freed: nothing listens, so the connection is refused at once
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _entry(monkeypatch, "amazon-mi-2014", downloads=(
        ("reviews.json.gz", f"http://127.0.0.1:{port}/reviews.json.gz", None),),
        page="https://example.org/originals")
    start = time.monotonic()
    r = cli("data", "download", "amazon-mi-2014", "--dest", tmp_path / "root")
    assert time.monotonic() - start < 8
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1
    assert "offline?" in r.err and "reviews.json.gz" in r.err
    assert str(tmp_path / "root" / "amazon-mi-2014") in r.err
    assert "https://example.org/originals" in r.err
    assert not (tmp_path / "root").exists()


def test_unresolvable_host_is_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from lmmrec.data import download
    from lmmrec.errors import DataError

    def no_dns(*args: object) -> None:
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(download.socket, "getaddrinfo", no_dns)
    with pytest.raises(DataError, match="cannot resolve .*offline\\? put"):
        download.download("amazon-beauty-2023", tmp_path)
    assert not list(tmp_path.iterdir())


def _split_archive(www: Path, files: dict[str, bytes], n_parts: int) -> list[str]:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    blob = buf.getvalue()
    step = -(-len(blob) // n_parts)
    names = []
    for i in range(n_parts):
        (www / f"data.tar.gz{i:02d}").write_bytes(blob[i * step:(i + 1) * step])
        names.append(f"data.tar.gz{i:02d}")
    return names


@pytest.mark.parametrize("tamper", [False, True])
def test_split_archive_keeps_only_pinned_members(cli, server, tmp_path: Path, tamper: bool,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    url, www = server
    files = {f"data/amazon/{n}": f"{n} bytes".encode() for n in
             ("trn_mat.pkl", "val_mat.pkl", "tst_mat.pkl")}
    files["data/amazon/usr_emb_np.pkl"] = b"not kept"
    files["data/yelp/trn_mat.pkl"] = b"another dataset"
    parts = _split_archive(www, files, 3)
    members = tuple((f"amazon/{n}", n, _sha(b"x" if tamper and n == "val_mat.pkl" else
                                            f"{n} bytes".encode()))
                    for n in ("trn_mat.pkl", "val_mat.pkl", "tst_mat.pkl"))
    _entry(monkeypatch, "rlmrec-amazon", archive=catalog.Archive(
        tuple(f"{url}/{p}" for p in parts), members))
    r = cli("data", "download", "rlmrec-amazon", "--dest", tmp_path / "root")
    if tamper:
        assert r.code == 2 and "checksum mismatch" in r.err and "val_mat.pkl" in r.err
        assert _leftovers(tmp_path / "root" / "rlmrec-splits") == []
        return
    assert r.code == 0, r.err
    got = tmp_path / "root" / "rlmrec-splits" / "amazon"
    assert sorted(p.name for p in got.iterdir()) == ["trn_mat.pkl", "tst_mat.pkl",
                                                     "val_mat.pkl"]
    assert (got / "trn_mat.pkl").read_bytes() == b"trn_mat.pkl bytes"


def test_shipped_dataset_is_copied_verified(cli, tmp_path: Path) -> None:
    r = cli("data", "download", "amazon-beauty-2023-mini", "--dest", tmp_path)
    assert r.code == 0, r.err
    got = tmp_path / "amazon-beauty-2023-mini"
    assert _sha((got / "history_reviews.json.gz").read_bytes()) == (
        "55ab6625fd6b4f2cc573c24e4c4b640b3952610a1b87f26c3dddab10a605a990")
    assert _sha((got / "meta_data.json.gz").read_bytes()) == (
        "12555e84cffc78b6023f7de10d0d89718b6c100ea841cf8d73934db20dd34bae")


def test_shipped_copies_match_the_pinned_sums() -> None:
    """The files in the package are the very originals the download pins."""
    for name, k in catalog.KNOWN.items():
        shipped = catalog.embedded(name)
        if shipped is None:
            continue
        for fname, _, sha in k.downloads:
            assert sha and _sha((shipped / fname).read_bytes()) == sha, (name, fname)
    assert catalog.embedded("amazon-mi-2014") and catalog.embedded("amazon-beauty-2023-mini")


def test_shipped_copies_say_source_and_terms() -> None:
    for name in catalog.KNOWN:
        shipped = catalog.embedded(name)
        if shipped is None:
            continue
        readme = (shipped / "README.md").read_text()
        assert "**Source.**" in readme and "**Terms.**" in readme, name
        for f in shipped.glob("*.gz"):
            assert _sha(f.read_bytes()) in readme, (name, f.name)


def test_download_table_is_complete() -> None:
    for name, k in catalog.KNOWN.items():
        assert k.downloads or k.archive or catalog.embedded(name), name
        for fname, url, sha in k.downloads:
            assert url.startswith("http") and fname, name
            assert sha is None or len(sha) == 64
        if k.archive:
            assert all(len(sha) == 64 for _, _, sha in k.archive.members)

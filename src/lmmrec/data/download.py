"""`lmmrec data download NAME`: fetch a known dataset's upstream files, verified.

Offline machines must fail fast: the host is resolved in a thread bounded by the connect
timeout (getaddrinfo has no timeout of its own), then connected with the same timeout.
Files land in a temporary folder that is renamed into place only when all are verified.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from lmmrec.data.catalog import KNOWN
from lmmrec.errors import DataError

CONNECT_TIMEOUT_S = 5.0


def _resolve_host(url: str, timeout: float) -> None:
    parsed = urlparse(url)
    host, port = parsed.hostname or "", parsed.port or (443 if parsed.scheme == "https" else 80)
    result: list[BaseException | None] = []

    def work() -> None:
        try:
            socket.getaddrinfo(host, port)
            result.append(None)
        except OSError as e:
            result.append(e)

    t = threading.Thread(target=work, daemon=True)
    t.start()
    t.join(timeout)
    if not result:
        raise DataError(f"cannot resolve {host} within {timeout:.0f} s: offline? "
                        "(copy the files by hand into $LMMREC_DATA_DIR instead)")
    if result[0] is not None:
        raise DataError(f"cannot resolve {host}: {result[0]} (offline?)")


def fetch(url: str, dest: Path, sha256: str | None, timeout: float = CONNECT_TIMEOUT_S) -> str:
    """Download ``url`` to ``dest``; return its sha256 (checked when ``sha256`` is given)."""
    _resolve_host(url, timeout)
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r, open(dest, "wb") as f:
            while chunk := r.read(1 << 20):
                h.update(chunk)
                f.write(chunk)
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        raise DataError(f"download failed: {e} (offline?)", path=url) from e
    digest = h.hexdigest()
    if sha256 and digest != sha256:
        raise DataError(f"checksum mismatch: expected sha256 {sha256}, got {digest}", path=url)
    return digest


def download(name: str, root: Path, timeout: float = CONNECT_TIMEOUT_S) -> Path:
    if name not in KNOWN:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(KNOWN)}", field="name")
    k = KNOWN[name]
    if not k.downloads:
        raise DataError(f"{name} has no direct download: {k.note or 'copy it by hand'}")
    target = root / k.subdir
    if target.exists():
        raise DataError("already present; remove it to download again", path=target)
    _resolve_host(k.downloads[0][1], timeout)  # fail fast offline, before creating anything
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.download-", dir=target.parent))
    try:
        for fname, url, sha in k.downloads:
            fetch(url, tmp / fname, sha, timeout)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target

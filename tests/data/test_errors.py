"""Broken inputs end in a DataError naming file and line/field, exit 2, and no output.

Every fixture is cut from the real data files and then damaged.
"""

from __future__ import annotations

import gzip
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import RLMREC_CUT, STEAM_HEAD, head_lines, leftovers, write_gz

STEAM = STEAM_HEAD / "user_reviews.jsonl.gz"
AMZ = "reviews_Musical_Instruments_5.json.gz"


def _steam(tmp: Path, lines: list[bytes]) -> Path:
    folder = tmp / "steam-src"
    write_gz(folder / "user_reviews.jsonl.gz", lines)
    return folder


def _assert_failed(r, out: Path, *needles: str) -> None:
    assert r.code == 2, (r.code, r.out, r.err)
    assert "error:" in r.err
    for n in needles:
        assert n in r.err, (n, r.err)
    assert not out.exists()
    assert leftovers(out.parent) == []


def test_truncated_gzip(cli, tmp_path: Path) -> None:
    src = write_gz(tmp_path / "full" / "user_reviews.jsonl.gz", head_lines(STEAM, 2000))
    folder = tmp_path / "steam-src"
    folder.mkdir()
    blob = src.read_bytes()
    (folder / "user_reviews.jsonl.gz").write_bytes(blob[: len(blob) // 2])
    out = tmp_path / "out"
    r = cli("data", "prepare", folder, "--out", out, "--format", "steam-au")
    _assert_failed(r, out, "user_reviews.jsonl.gz", "line ", "truncated")


def test_malformed_json_line(cli, tmp_path: Path) -> None:
    lines = head_lines(STEAM, 300)
    lines[41] = lines[41][: len(lines[41]) // 2] + b"\n"  # line 42 cut in half
    out = tmp_path / "out"
    r = cli("data", "prepare", _steam(tmp_path, lines), "--out", out)
    _assert_failed(r, out, "user_reviews.jsonl.gz", "line 42", "malformed JSON")


def test_missing_column(cli, tmp_path: Path) -> None:
    lines = head_lines(STEAM, 300)
    lines[9] = lines[9].replace(b'"item_id"', b'"itemid"')
    out = tmp_path / "out"
    r = cli("data", "prepare", _steam(tmp_path, lines), "--out", out)
    _assert_failed(r, out, "user_reviews.jsonl.gz", "line 10", "field 'item_id'")


def test_missing_column_in_table(cli, dataset, tmp_path: Path) -> None:
    import pandas as pd

    src = pd.read_json(dataset("amazon-mi-2014") / AMZ, lines=True, nrows=200)
    path = tmp_path / "reviews.csv"
    src[["reviewerID", "overall"]].to_csv(path, index=False)
    out = tmp_path / "out"
    r = cli("data", "prepare", path, "--out", out, "--columns", "user=reviewerID")
    _assert_failed(r, out, "reviews.csv", "field 'item'")


def test_empty_file(cli, tmp_path: Path) -> None:
    folder = tmp_path / "amz"
    write_gz(folder / "reviews_Musical_Instruments_5.json.gz", [])
    out = tmp_path / "out"
    r = cli("data", "prepare", folder, "--out", out, "--format", "amazon2014")
    _assert_failed(r, out, "reviews_Musical_Instruments_5.json.gz", "empty file")


def test_invalid_utf8(cli, dataset, tmp_path: Path) -> None:
    lines = head_lines(dataset("amazon-mi-2014") / AMZ, 300)
    lines[99] = lines[99].replace(b"reviewText", b"review\xff\xfeText", 1)
    folder = tmp_path / "amz"
    write_gz(folder / "reviews_Musical_Instruments_5.json.gz", lines)
    out = tmp_path / "out"
    r = cli("data", "prepare", folder, "--out", out)
    _assert_failed(r, out, "reviews_Musical_Instruments_5.json.gz", "line 100", "UTF-8")


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_pickle_with_disallowed_class(cli, tmp_path: Path) -> None:
    folder = tmp_path / "rlm"
    folder.mkdir()
    for name in ("val_mat.pkl", "tst_mat.pkl"):
        shutil.copy(RLMREC_CUT / name, folder / name)
    marker = tmp_path / "pwned"
    (folder / "trn_mat.pkl").write_bytes(pickle.dumps(_Exploit(marker)))
    out = tmp_path / "out"
    r = cli("data", "prepare", folder, "--out", out)
    _assert_failed(r, out, "trn_mat.pkl", "disallowed class", "system")
    assert not marker.exists()


def test_pickle_other_classes_fail(tmp_path: Path) -> None:
    import collections

    from lmmrec.data.readers.rlmrec import load_matrix
    from lmmrec.errors import DataError

    assert load_matrix(RLMREC_CUT / "val_mat.pkl").nnz == 2694  # written by today's scipy
    bad = tmp_path / "x.pkl"
    bad.write_bytes(pickle.dumps(collections.OrderedDict(a=1)))
    with pytest.raises(DataError, match=r"x\.pkl.*collections\.OrderedDict"):
        load_matrix(bad)


def test_pickle_real_classes_pass(dataset) -> None:
    """RLMRec's own pickles (an older numpy's class paths) pass the restricted unpickler."""
    from lmmrec.data.readers.rlmrec import load_matrix

    assert load_matrix(dataset("rlmrec-yelp") / "val_mat.pkl").nnz == 55479


def test_exit_code_from_a_real_process(dataset, tmp_path: Path) -> None:
    folder = tmp_path / "amz"
    write_gz(folder / "reviews_x.json.gz",
             head_lines(dataset("amazon-mi-2014") / AMZ, 50)
             + [b"{not json\n"])
    out = tmp_path / "out"
    p = subprocess.run([sys.executable, "-m", "lmmrec.cli.main", "data", "prepare",
                        str(folder), "--out", str(out)], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 2
    assert "reviews_x.json.gz" in p.stderr and "line 51" in p.stderr
    assert "Traceback" not in p.stderr
    assert not out.exists()


def test_gzip_fixture_is_really_gzip(tmp_path: Path) -> None:
    p = write_gz(tmp_path / "a.gz", head_lines(STEAM, 3))
    with gzip.open(p, "rb") as f:
        assert len(f.read().splitlines()) == 3

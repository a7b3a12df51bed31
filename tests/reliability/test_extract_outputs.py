"""Outputs are never lost: an export never replaces a folder that is not an artifact, nor an
artifact without --overwrite; leftovers of a killed export are cleaned; a store exported
against another dataset is an error, not an empty artifact. The other commands that write a
folder or file (noise copies, report, merge) follow the same rule."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lmmrec.errors import DataError

from .extract_helpers import fill_store, make_tiny, one_line_error


@pytest.fixture(scope="module")
def tiny(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two prepared datasets of disjoint real users, and a filled store of the first."""
    root = tmp_path_factory.mktemp("tiny")
    a = make_tiny(data_dir, root / "raw", root / "tiny-a", slice(0, 4))
    b = make_tiny(data_dir, root / "raw", root / "tiny-b", slice(10, 14))
    fill_store(a, root / "a.sqlite")
    return a, b, root / "a.sqlite"


def _export(cli, store: Path, data: Path, out: Path, *extra: str):  # noqa: ANN202
    return cli("extract", "export", "--store", store, "--data", data, "--out", out, *extra)


def _user_folder(path: Path) -> Path:
    (path / "chapters").mkdir(parents=True)
    (path / "thesis.tex").write_text("\\documentclass{article}")
    (path / "chapters" / "one.tex").write_text("one")
    return path


def test_export_refuses_a_folder_that_is_not_an_artifact(cli, tiny, tmp_path: Path) -> None:
    data, _, store = tiny
    out = _user_folder(tmp_path / "thesis")
    for extra in ((), ("--overwrite",)):
        line = one_line_error(_export(cli, store, data, out, *extra))
        assert "not a motivation artifact" in line and str(out) in line
        assert (out / "thesis.tex").read_text() == "\\documentclass{article}"
        assert (out / "chapters" / "one.tex").exists()
    # a finished training run is not an artifact either
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.json", "metrics.json", "best.pt"):
        (run / name).write_text("{}")
    one_line_error(_export(cli, store, data, run, "--overwrite"))
    assert sorted(p.name for p in run.iterdir()) == ["best.pt", "config.json", "metrics.json"]
    # a plain file is refused too
    f = tmp_path / "notes.txt"
    f.write_text("keep me")
    one_line_error(_export(cli, store, data, f, "--overwrite"))
    assert f.read_text() == "keep me"


def test_export_replaces_an_artifact_only_with_overwrite(cli, tiny, tmp_path: Path) -> None:
    data, _, store = tiny
    out = tmp_path / "art"
    code, stdout, err = _export(cli, store, data, out)
    assert code == 0, err
    first = json.loads((out / "manifest.json").read_text())
    assert first["counts"]["extracted"] > 0
    line = one_line_error(_export(cli, store, data, out))
    assert "--overwrite" in line
    assert json.loads((out / "manifest.json").read_text()) == first
    code, _, err = _export(cli, store, data, out, "--overwrite")
    assert code == 0, err
    assert json.loads((out / "manifest.json").read_text())["counts"] == first["counts"]
    # an empty folder holds nothing to lose
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _export(cli, store, data, empty).code == 0
    assert (empty / "reviews.parquet").exists()
    # no temp folders are left beside the artifact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art", "empty"]


def test_export_cleans_leftovers_of_a_killed_export(cli, tiny, tmp_path: Path) -> None:
    data, _, store = tiny
    out = tmp_path / "art"
    assert _export(cli, store, data, out).code == 0
    # what a kill -9 mid-export leaves: a half-written temp folder of a dead process
    dead = 2 ** 22 + 12345  # above the default pid_max: no such process
    orphan = tmp_path / f".art.tmp-{dead}-x1y2"
    orphan.mkdir()
    (orphan / "reviews.parquet").write_bytes(b"half")
    assert _export(cli, store, data, out, "--overwrite").code == 0
    assert not orphan.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art"]


def test_export_restores_an_artifact_set_aside_by_a_killed_export(cli, tiny,
                                                                  tmp_path: Path) -> None:
    """Killed between 'old aside' and 'new in': the next run puts the old one back."""
    data, _, store = tiny
    out = tmp_path / "art"
    assert _export(cli, store, data, out).code == 0
    before = (out / "manifest.json").read_text()
    aside = tmp_path / f".art.old-{2 ** 22 + 7}-abcd"
    out.rename(aside)
    # no --overwrite: refused, because the old one is back in place
    assert "--overwrite" in one_line_error(_export(cli, store, data, out))
    assert (out / "manifest.json").read_text() == before and not aside.exists()


def test_export_against_another_dataset_is_an_error(cli, tiny, tmp_path: Path) -> None:
    data, other, store = tiny
    out = tmp_path / "art"
    line = one_line_error(_export(cli, store, other, out))
    assert "another dataset" in line and str(store) in line
    assert not out.exists()


def test_noise_copies_refuse_foreign_folders(tmp_path: Path) -> None:
    from lmmrec.experiment.noise import noise_text

    src = Path(__file__).resolve().parents[1] / "fixtures" / "motivations-beauty-mini"
    out = _user_folder(tmp_path / "mine")
    with pytest.raises(DataError, match="not a noised copy"):
        noise_text(src, out, 0.1, 1, overwrite=True)
    assert (out / "thesis.tex").exists()
    made = tmp_path / "noised"
    noise_text(src, made, 0.1, 1)
    noise_text(src, made, 0.2, 1)  # its own kind, overwrite (the default): replaced
    assert json.loads((made / "manifest.json").read_text())["noise"]["share"] == 0.2
    with pytest.raises(DataError, match="--overwrite"):
        noise_text(src, made, 0.3, 1, overwrite=False)


def test_report_refuses_a_folder_as_its_file(cli, tmp_path: Path) -> None:
    out = _user_folder(tmp_path / "out")
    run = tmp_path / "run"
    run.mkdir()
    line = one_line_error(cli("report", run, "--out", out))
    assert "is a folder" in line and (out / "thesis.tex").exists()


def test_merge_refuses_a_target_that_is_not_a_store(cli, tiny, tmp_path: Path) -> None:
    _, _, store = tiny
    target = tmp_path / "notes.sqlite"
    junk = b"not a database, but someone's file " * 100
    target.write_bytes(junk)
    line = one_line_error(cli("extract", "merge", store, "--out", target))
    assert "not a readable extraction store" in line and str(target) in line
    assert target.read_bytes() == junk
    shutil.copy(store, tmp_path / "copy.sqlite")
    line = one_line_error(cli("extract", "merge", store, "--out", tmp_path))
    assert "is a folder" in line


def test_data_prepare_overwrites_only_a_prepared_dataset(cli, tiny, tmp_path: Path) -> None:
    data, _, _ = tiny
    raw = data.parent / "raw" / data.name
    out = _user_folder(tmp_path / "thesis")
    args = ("data", "prepare", raw, "--format", "amazon2023", "--split", "loo")
    line = one_line_error(cli(*args, "--out", out, "--overwrite"))
    assert "not a prepared dataset" in line and (out / "thesis.tex").exists()
    assert cli(*args, "--out", tmp_path / "d").code == 0
    assert "--overwrite" in one_line_error(cli(*args, "--out", tmp_path / "d"))
    assert cli(*args, "--out", tmp_path / "d", "--overwrite").code == 0

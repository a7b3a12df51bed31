"""Shared fixtures: real data from $LMMREC_DATA_DIR (../shared/data in this repo's CI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _data_dir() -> Path:
    env = os.environ.get("LMMREC_DATA_DIR")
    path = Path(env) if env else REPO.parent / "shared" / "data"
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = _data_dir()
    if not path.is_dir():
        pytest.fail(f"real datasets not found at {path}: set LMMREC_DATA_DIR")
    return path


FIXTURES = Path(__file__).resolve().parent / "fixtures"


class CliResult:
    """Exit code and output of one in-process `lmmrec` call; unpacks as (code, out, err)."""

    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def __iter__(self):  # noqa: ANN204
        return iter((self.code, self.out, self.err))


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):  # noqa: ANN201
    """Run `lmmrec ARGS` in-process through main() (LmmrecError -> exit code 2)."""
    from lmmrec.cli.main import main

    def run(*args: object) -> CliResult:
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as e:
            code = int(e.code or 0)
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run


@pytest.fixture(scope="session")
def beauty_dir(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """amazon-beauty-2023-mini prepared with its defaults (3:1:1, seed 2024), once."""
    from lmmrec.data.pipeline import prepare_to

    out = tmp_path_factory.mktemp("prepared") / "beauty"
    prepare_to(str(data_dir / "amazon-beauty-2023-mini"), out)
    return out


@pytest.fixture(scope="session")
def beauty_motivations(beauty_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The frozen real-extraction fixture, embedded with the real MiniLM model."""
    import shutil

    from lmmrec.text.embed import embed_artifact

    out = tmp_path_factory.mktemp("motivations") / "beauty"
    shutil.copytree(FIXTURES / "motivations-beauty-mini", out)
    embed_artifact(out)
    return out

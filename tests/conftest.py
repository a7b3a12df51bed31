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


# One small trained run with motivations and one baseline, shared by the explain, serve and
# report tests (session scope: trained once however many folders ask for them).
SHARED_RUN_EPOCHS = 3


def _train_shared(tmp_path_factory: pytest.TempPathFactory, data: Path,
                  motivations: Path | None) -> Path:
    """`lmmrec train --backbone lightgcn --method lmmrec|base --set train.max_epochs=3`."""
    from lmmrec.train.config import resolve_config
    from lmmrec.train.trainer import fit

    method = "lmmrec" if motivations else "base"
    base: dict[str, object] = {"method": method, "data": str(data)}
    if motivations:
        base["motivations"] = str(motivations)
    cfg = resolve_config("lightgcn", [], [f"train.max_epochs={SHARED_RUN_EPOCHS}",
                                          "train.progress=false", "train.threads=1"], base=base)
    out = tmp_path_factory.mktemp("runs") / method
    fit(cfg, out)
    return out


@pytest.fixture(scope="session")
def lmmrec_run(tmp_path_factory: pytest.TempPathFactory, beauty_dir: Path,
               beauty_motivations: Path) -> Path:
    return _train_shared(tmp_path_factory, beauty_dir, beauty_motivations)


@pytest.fixture(scope="session")
def base_run(tmp_path_factory: pytest.TempPathFactory, beauty_dir: Path) -> Path:
    return _train_shared(tmp_path_factory, beauty_dir, None)


@pytest.fixture(scope="session")
def recommender(lmmrec_run: Path):  # noqa: ANN201
    from lmmrec.explain.recommender import Recommender

    return Recommender.load(lmmrec_run)


@pytest.fixture(scope="session")
def base_recommender(base_run: Path):  # noqa: ANN201
    from lmmrec.explain.recommender import Recommender

    return Recommender.load(base_run)

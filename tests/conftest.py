"""Shared fixtures. Datasets come from $LMMREC_DATA_DIR (../shared/data beside the repo in
CI), else from the copies shipped in the package; a test whose dataset is in neither place
skips with a reason starting with MISSING, which .ci/run refuses where the data is present."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
MISSING = "missing dataset"


def _data_dir() -> Path:
    env = os.environ.get("LMMREC_DATA_DIR")
    path = Path(env) if env else REPO.parent / "shared" / "data"
    return path


def dataset_path(name: str) -> Path:
    """Raw folder of known dataset ``name``; skips (reason: MISSING ...) when absent."""
    from lmmrec.data.catalog import KNOWN, embedded

    folder = _data_dir() / KNOWN[name].subdir
    if folder.is_dir():
        return folder
    shipped = embedded(name)
    if shipped is not None:
        return shipped
    pytest.skip(f"{MISSING} {name}: not under {_data_dir()} and not shipped with lmmrec; "
                f"set LMMREC_DATA_DIR to a folder holding {KNOWN[name].subdir}/")


@pytest.fixture(scope="session")
def dataset() -> Callable[[str], Path]:
    """``dataset("steam-au")`` -> its raw folder (or the test skips, naming it)."""
    return dataset_path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The whole data folder; tests needing only some datasets use ``dataset`` instead."""
    path = _data_dir()
    if not path.is_dir():
        pytest.skip(f"{MISSING} folder {path}: set LMMREC_DATA_DIR to the datasets' folder")
    return path


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
def beauty_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """amazon-beauty-2023-mini prepared with its defaults (3:1:1, seed 2024), once."""
    from lmmrec.data.pipeline import prepare_to

    out = tmp_path_factory.mktemp("prepared") / "beauty"
    prepare_to(str(dataset_path("amazon-beauty-2023-mini")), out)
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


# Where the datasets are present (CI, with ../shared/data), a skip for missing data means a
# test silently stopped testing: LMMREC_REQUIRE_DATA=1 (set by .ci/run) turns any such skip
# into a failed session.
_skipped_for_data: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and MISSING in str(report.longrepr):
        _skipped_for_data.append(report.nodeid)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ANN001
    if _skipped_for_data:
        terminalreporter.write_line(f"{len(_skipped_for_data)} skipped for a {MISSING} "
                                    "(set LMMREC_DATA_DIR to run them)")
        if os.environ.get("LMMREC_REQUIRE_DATA") == "1":
            terminalreporter.write_line("LMMREC_REQUIRE_DATA=1: these skips fail the run",
                                        red=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped_for_data and os.environ.get("LMMREC_REQUIRE_DATA") == "1" and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

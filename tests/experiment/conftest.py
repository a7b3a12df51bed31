"""A tiny real dataset (amazon-beauty-2023-mini, ~250 users) prepared once per session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def beauty(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lmmrec.data.pipeline import prepare_to

    out = tmp_path_factory.mktemp("beauty") / "prepared"
    prepare_to(str(data_dir / "amazon-beauty-2023-mini"), out)
    return out


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):  # noqa: ANN201
    """Run `lmmrec ARGS` in-process; returns (exit code, stdout, stderr)."""
    from lmmrec.cli.main import main

    def run(*args: object) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as e:
            code = int(e.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run

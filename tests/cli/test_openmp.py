"""The training commands ask OpenMP for sleeping (PASSIVE) waits before torch loads; a value
the user set wins, and nothing changes once torch is loaded (libgomp read it already)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

CODE = """
import os, sys
{before}
from lmmrec.cli.openmp import prefer_passive_wait
prefer_passive_wait()
print(os.environ.get("OMP_WAIT_POLICY"))
"""


def policy(before: str = "", env: dict[str, str] | None = None) -> str:
    full = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | (env or {})
    out = subprocess.run([sys.executable, "-c", CODE.format(before=before)], env=full,
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_passive_by_default() -> None:
    assert policy() == "PASSIVE"


def test_user_value_wins() -> None:
    assert policy(env={"OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"


@pytest.mark.slow
def test_nothing_once_torch_is_loaded() -> None:
    assert policy(before="import torch") == "None"


def test_training_commands_set_it_before_torch() -> None:
    """`lmmrec train` and `experiment run/noise` call it first thing, before any import that
    loads torch (the other commands, the LLM's included, leave OpenMP alone)."""
    import inspect

    from lmmrec.cli import experiment, train

    for fn in (train.train, experiment.run_cmd, experiment.noise_cmd):
        body = inspect.getsource(fn).split('"""')[-1]
        assert body.index("prefer_passive_wait()") < body.index("import "), fn.__name__

"""A tiny real dataset and a fast MF run for the training reliability tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lmmrec.train.config import resolve_config
from lmmrec.train.rlmrec_splits import load_rlmrec_splits

# early-stops after ~20 epochs of a few ms each
SETS = ["train.max_epochs=40", "train.eval_every=1", "train.patience=2",
        "train.batch_size=1024", "train.progress=false", "train.threads=1", "optim.lr=0.01",
        "train.device=cpu", "eval.ks=[5,20]"]


def make_data(data_dir: Path, out: Path) -> Path:
    """The first 120 users of rlmrec-splits/amazon as a prepared dataset folder."""
    out.mkdir(parents=True, exist_ok=True)
    load_rlmrec_splits(data_dir / "rlmrec-splits" / "amazon", max_users=120).save(out)
    return out


def config(data: Path, *extra: str, backbone: str = "mf"):  # noqa: ANN201
    return resolve_config(backbone, overrides=[f"data={data}", *SETS, *extra])


def train_args(data: Path, out: Path, *extra: str, backbone: str = "mf") -> list[str]:
    sets = [a for s in [*SETS, *extra] for a in ("--set", s)]
    return ["train", "--backbone", backbone, "--data", str(data), "--out", str(out), *sets]


def one_line_error(res, *needles: str) -> str:  # noqa: ANN001
    """The single `error: ...` line (besides notes) of a CLI call that exited 2, holding
    every needle."""
    assert res.code == 2, (res.code, res.err[-2000:])
    lines = [ln for ln in res.err.splitlines() if ln.strip() and not ln.startswith("note: ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.err[-2000:]
    assert "Traceback" not in res.err
    print(lines[0])  # shown with -s: what the user reads
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def python(code: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter (a real process that can be killed)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=timeout)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())
            if p.is_file() and p.name != ".lock"}

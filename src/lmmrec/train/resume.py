"""Picking a run up again: reading checkpoint.pt back, checking it is this run's, and
putting its weights, optimiser, RNG and counters into a fresh training state.

checkpoint.pt is a file format: {"model", "optim", "rng", "state", "best_weights",
"config"}, with "state" the counters dict (STATE_KEYS, plus "stopped" since it was added).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lmmrec.errors import DataError
from lmmrec.train import checkpoint as ckpt
from lmmrec.train.config import RunConfig
from lmmrec.train.files import BEST, CHECKPOINT, METRICS
from lmmrec.train.state import TrainState

CHECKPOINT_KEYS = ("model", "optim", "rng", "state", "best_weights", "config")
STATE_KEYS = ("epoch", "best_score", "best_epoch", "best_val", "bad_checks", "epoch_seconds")


def checkpoint_contents(st: TrainState) -> dict[str, Any]:
    """What checkpoint.pt holds after a validation."""
    return {"model": st.model.state_dict(), "optim": st.optimizer.state_dict(),
            "rng": ckpt.rng_state(st.sampler.rng), "state": st.counters,
            "best_weights": st.best_weights, "config": st.cfg.model_dump()}


def load_checkpoint(out: Path, cfg: RunConfig) -> dict[str, Any]:
    """checkpoint.pt, checked to be this run's (on CPU: RNG states must stay there)."""
    path = out / CHECKPOINT
    saved = ckpt.load(path, keys=CHECKPOINT_KEYS)
    check_origin(saved["config"], cfg, path)
    state = saved["state"]
    if not isinstance(state, dict) or any(k not in state for k in STATE_KEYS):
        raise DataError("not an lmmrec checkpoint (its training state is incomplete)",
                        path=path)
    # checkpoints written before the stop was recorded: the same rule, applied again
    state.setdefault("stopped", state["epoch"] >= cfg.train.max_epochs
                     or state["bad_checks"] >= cfg.train.patience)
    return saved


def restore(st: TrainState, saved: dict[str, Any]) -> None:
    """Put a loaded checkpoint's weights, optimiser, RNG, counters and best weights into
    `st`; a checkpoint that unpickled but does not fit raises DataError naming it."""
    path = st.out / CHECKPOINT
    ckpt.load_weights(st.model, saved["best_weights"], path)  # checked now, used at the end
    ckpt.load_weights(st.model, saved["model"], path)
    try:
        st.optimizer.load_state_dict(saved["optim"])
        ckpt.set_rng_state(saved["rng"], st.sampler.rng)
    except Exception as e:  # a damaged or foreign checkpoint that still unpickled
        raise DataError(f"cannot restore the optimiser or RNG state: {ckpt.one_line(e)}",
                        path=path) from e
    st.counters, st.best_weights = saved["state"], saved["best_weights"]


def check_origin(saved_cfg: Any, cfg: RunConfig, path: Path) -> None:
    """A checkpoint's stored config names the run's backbone and method."""
    backbone = saved_cfg.get("backbone") if isinstance(saved_cfg, dict) else None
    theirs = (backbone.get("name") if isinstance(backbone, dict) else None,
              saved_cfg.get("method") if isinstance(saved_cfg, dict) else None)
    ours = (cfg.backbone["name"], cfg.method)
    if theirs != ours:
        raise DataError(f"written by another run ({theirs[0]} / {theirs[1]}; this run is "
                        f"{ours[0]} / {ours[1]})", path=path)


def finished_metrics(out: str | Path) -> dict[str, Any] | None:
    """metrics.json of a run with its best.pt in place, or None when either is missing."""
    out = Path(out)
    if not (out / BEST).exists():
        return None
    try:
        metrics = json.loads((out / METRICS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return metrics if isinstance(metrics, dict) and "test" in metrics else None

"""Checkpoint files and restorable RNG state (plain types and tensors only, so
`torch.load(weights_only=True)` can read them back). Files are written by lmmrec.io."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lmmrec import io
from lmmrec.errors import DataError


def save(obj: Any, path: Path) -> None:
    """torch.save ``obj`` to ``path`` atomically (a WriteError keeps the old file)."""
    io.atomic_write(path, lambda f: torch.save(obj, f))


def load(path: Path, device: str | torch.device = "cpu", keys: tuple[str, ...] = ()) -> Any:
    """A checkpoint dict holding `keys`; DataError naming the file if it is missing,
    truncated, corrupt or not one of ours."""
    try:
        obj = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise DataError("file not found", path=path) from None
    except Exception as e:  # torch raises many kinds for a damaged file
        # the first sentence: torch goes on with advice (weights_only=False) not to follow
        reason = one_line(e, 120).split(". ")[0]
        raise DataError(f"not a readable checkpoint (truncated, corrupt or not lmmrec's): "
                        f"{reason}", path=path) from e
    if not isinstance(obj, dict) or any(k not in obj for k in keys):
        expected = f" (expected the keys {', '.join(keys)})" if keys else ""
        raise DataError(f"not an lmmrec checkpoint{expected}", path=path)
    return obj


def load_weights(model: torch.nn.Module, weights: Any, path: Path) -> None:
    """model.load_state_dict(weights); a DataError naming the file when they do not fit."""
    try:
        model.load_state_dict(weights)
    except Exception as e:  # RuntimeError: missing keys / size mismatch; others: not a dict
        raise DataError("its weights do not fit this run's model and dataset (another model "
                        f"or dataset?): {one_line(e)}", path=path) from e


def one_line(e: BaseException, limit: int = 300) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= limit else text[:limit] + " ..."


def rng_state(sampler_rng: np.random.Generator) -> dict[str, Any]:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": random.getstate(),
        "sampler": sampler_rng.bit_generator.state,
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any], sampler_rng: np.random.Generator) -> None:
    torch.set_rng_state(state["torch"].cpu())  # map_location may have moved them
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].cpu().numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["gauss"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    sampler_rng.bit_generator.state = state["sampler"]
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])

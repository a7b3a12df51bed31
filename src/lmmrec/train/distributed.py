"""Data-parallel training across processes (torchrun): the few collectives `fit` needs.

Gradients are averaged by hand after `backward` (one flat all-reduce per step) rather than
through DistributedDataParallel: the trainer calls the model's forward, then the backbone's
`extra_losses` / `ego_embeddings` and an aligner's losses, which touch parameters outside
the forward and may skip terms on some ranks (too few entities with text in a batch). A
manual all-reduce is indifferent to both: a parameter without a gradient on one rank
contributes zeros there, and one without a gradient on every rank keeps `grad=None`, as it
would in a single process (so Adam skips it alike). Averaging over ranks with equal local
batches equals the gradient of the global batch.

Every rank starts from rank 0's state, so parameters (and the optimiser's moments, which
see the same averaged gradients) stay bitwise identical. State that is not trained by
gradients (the EMA teacher of the LMMRec aligner, buffers) is updated on each rank from
those identical parameters; because an update can be skipped by a rank whose batch lacks
entities with text, it is re-broadcast from rank 0 at the end of every epoch.

Backend: `gloo` on CPU, `nccl` on CUDA; `$LMMREC_DIST_BACKEND` overrides.
`$LMMREC_DIST_DUMP=DIR` makes each rank write DIR/rank<R>.json with digests of its state
after training (used by the tests to check that ranks agree).
"""

from __future__ import annotations

import atexit
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lmmrec.errors import ConfigError
from lmmrec.io import atomic_write_json


@dataclass
class Dist:
    """This process's place in the group (torchrun's RANK, WORLD_SIZE, LOCAL_RANK)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> Dist:
        env = os.environ
        return cls(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)),
                   int(env.get("LOCAL_RANK", 0)))


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """train.device resolved: 'auto' / 'cuda' take this rank's GPU."""
    if name == "auto":
        name = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    elif name == "cuda":
        name = f"cuda:{local_rank}"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device={name} but CUDA is not available")
    return torch.device(name)


def _td():  # noqa: ANN202
    import torch.distributed as td

    return td


def setup(world_size: int, device: torch.device) -> None:
    """Join the process group named by torchrun's environment (idempotent)."""
    td = _td()
    if world_size <= 1 or td.is_initialized():
        return
    backend = os.environ.get("LMMREC_DIST_BACKEND") or ("nccl" if device.type == "cuda"
                                                        else "gloo")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    td.init_process_group(backend=backend)
    atexit.register(shutdown)


def finish() -> None:
    """End of a distributed run: every rank waits for the others (rank 0 still tests),
    then leaves the group. A rank that exits while a peer still runs can abort in gloo."""
    td = _td()
    if td.is_available() and td.is_initialized():
        td.barrier()
        td.destroy_process_group()


def shutdown() -> None:
    """atexit fallback (no barrier: a failing rank must not wait for the others)."""
    td = _td()
    if td.is_available() and td.is_initialized():
        td.destroy_process_group()


def local_batch(batch_size: int, world_size: int) -> int:
    """Per-rank batch: the global batch (train.batch_size) split evenly over the ranks."""
    return max(1, batch_size // world_size)


def _trainable(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p for p in model.parameters() if p.requires_grad]


def average_gradients(model: torch.nn.Module, world_size: int) -> None:
    """Average every trainable parameter's gradient over the ranks (one all-reduce per
    dtype). A parameter without a gradient anywhere keeps grad=None."""
    td = _td()
    params = _trainable(model)
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for p in params:
        by_dtype.setdefault(p.dtype, []).append(p)
    for dtype, group in by_dtype.items():
        parts = [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                 for p in group]
        has = torch.tensor([p.grad is not None for p in group], dtype=dtype,
                           device=group[0].device)
        flat = torch.cat([*parts, has])
        td.all_reduce(flat)
        counts = flat[-len(group):]
        flat = flat[:-len(group)].div_(world_size)
        for p, chunk, n in zip(group, flat.split([p.numel() for p in group]),
                               counts.tolist(), strict=True):
            if n == 0:
                continue  # no rank produced a gradient: leave None, like a single process
            if p.grad is None:
                p.grad = chunk.view_as(p).clone()
            else:
                p.grad.copy_(chunk.view_as(p))


def broadcast_state(model: torch.nn.Module, trainable: bool = True) -> None:
    """Copy rank 0's state_dict into every rank, in place (all of it, or with
    trainable=False only what gradients do not train: EMA teachers, buffers)."""
    td = _td()
    skip = set() if trainable else {n for n, p in model.named_parameters() if p.requires_grad}
    for name, t in model.state_dict().items():
        if name not in skip and t.numel():
            td.broadcast(t, src=0)


def broadcast_flag(flag: bool, device: torch.device) -> bool:
    """Rank 0's value of `flag` on every rank (the early-stopping decision)."""
    t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    _td().broadcast(t, src=0)
    return bool(t.item())


def mean_over_ranks(values: dict[str, float]) -> dict[str, float]:
    """Per-key mean of a small dict of floats over the ranks that have the key."""
    got: list[Any] = [None] * _td().get_world_size()
    _td().all_gather_object(got, values)
    keys = list(dict.fromkeys(k for d in got for k in d))
    return {k: sum(d[k] for d in got if k in d) / sum(k in d for d in got) for k in keys}


def state_digest(model: torch.nn.Module, trainable_only: bool = False) -> str:
    """sha256 of the model's state (key order), to compare ranks."""
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        if trainable_only and name not in names:
            continue
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
                 if t.numel() else b"")  # reshape: a 0-d tensor (a step counter) has no bytes view
    return h.hexdigest()


def dump_digest(model: torch.nn.Module, rank: int, world_size: int) -> None:
    """With $LMMREC_DIST_DUMP set, write this rank's state digests there."""
    folder = os.environ.get("LMMREC_DIST_DUMP")
    if not folder:
        return
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    record = {"rank": rank, "world_size": world_size, "state": state_digest(model),
              "trainable": state_digest(model, trainable_only=True)}
    atomic_write_json(path / f"rank{rank}.json", record)  # whole, or not there at all

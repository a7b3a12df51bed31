"""The training loop, top to bottom: data, model, BPR epochs, validation with early
stopping, checkpoints, then one test evaluation of the best weights.

`fit` reads as the loop itself; its steps are `start` (a fresh or resumed `TrainState`),
`train_epoch`, `validate` (early stopping, best weights, checkpoint) and `finish` (best.pt,
the test pass, metrics.json).

Loss = the backbone's `rec_loss` (BPR, unless it trains another) + L2 + the backbone's
`extra_losses` + the callbacks' `extra_losses`, all kept as a named dict. Anything with the
Backbone interface can be trained, so an alignment wrapper is passed as `model`.

Data-parallel under torchrun: rank / world size / device come from RANK, WORLD_SIZE,
LOCAL_RANK; each rank samples its shard with batch_size / WORLD_SIZE per step (so the global
batch is the single-process one), gradients are averaged over ranks after every backward
(`lmmrec.train.distributed`), only rank 0 evaluates and writes, and its early-stopping
decision is broadcast so every rank stops together.
"""

from __future__ import annotations

import json
import math
import random
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lmmrec import io
from lmmrec.align.build import wrap
from lmmrec.backbones import build_backbone
from lmmrec.config import build
from lmmrec.data.dataset import PreparedDataset
from lmmrec.data.preprocess import SATURATION_ITEMS_PER_K
from lmmrec.errors import ConfigError, DataError, LmmrecError
from lmmrec.eval.ranking import evaluate
from lmmrec.train import checkpoint as ckpt
from lmmrec.train import distributed, runfolder, runlog
from lmmrec.train.callbacks import Callback
from lmmrec.train.config import RunConfig, resolved
from lmmrec.train.distributed import Dist, pick_device
from lmmrec.train.files import BEST, CHECKPOINT, CONFIG, LOG, METRICS, RESOLVED
from lmmrec.train.resume import (
    check_origin,
    checkpoint_contents,
    finished_metrics,
    load_checkpoint,
    restore,
)
from lmmrec.train.sampler import BPRSampler
from lmmrec.train.state import TrainState, weights_copy

__all__ = ["BEST", "CHECKPOINT", "CONFIG", "LOG", "METRICS", "RESOLVED", "Diverged",
           "build_model", "evaluate_model", "evaluate_run", "fit", "load_run",
           "load_best", "load_dataset", "loss_terms", "read_config"]


class Diverged(LmmrecError):
    """The training loss became NaN or infinite."""


def load_dataset(cfg: RunConfig) -> PreparedDataset:
    """The prepared dataset named by cfg.data, checked against the eval settings."""
    if not cfg.data:
        raise ConfigError("no dataset: pass --data DIR (a prepared dataset folder)")
    ds = PreparedDataset.load(cfg.data)
    if max(cfg.eval.ks) > ds.n_items:
        raise ConfigError(f"eval.ks: K={max(cfg.eval.ks)} is larger than the catalogue "
                          f"({ds.n_items} items)")
    k = int(cfg.eval.select.partition("@")[2])
    if ds.n_items <= SATURATION_ITEMS_PER_K * k:
        warnings.warn(f"eval.select={cfg.eval.select} on {ds.n_items} items: near 1 for any "
                      "model, so early stopping on it is arbitrary; choose a smaller K "
                      "(--set eval.ks=[1,3,5] --set eval.select=recall@5)", stacklevel=2)
    return ds


def build_model(cfg: RunConfig, ds: PreparedDataset) -> torch.nn.Module:
    """The backbone, wrapped with the method's aligner unless the method is 'base'."""
    backbone = build_backbone(cfg.backbone["name"], ds.n_users, ds.n_items, ds.train,
                              cfg.backbone_config)
    return wrap(backbone, cfg.method, cfg.align_config, ds, cfg.motivations)


def loss_terms(model: Any, batch: tuple, user_emb: torch.Tensor, item_emb: torch.Tensor,
               cfg: RunConfig, callbacks: Sequence[Callback] = ()) -> dict[str, torch.Tensor]:
    """Every named loss term of one batch; the training loss is their sum."""
    users = batch[0]
    losses = dict(model.rec_loss(batch, user_emb, item_emb))  # BPR unless the backbone's own
    if cfg.optim.reg_weight > 0:
        if cfg.optim.reg == "params":
            l2 = sum(p.square().sum() for p in model.parameters() if p.requires_grad)
        else:
            l2 = sum(e.square().sum() for e in model.ego_embeddings(batch)) / (2 * len(users))
        losses["l2"] = cfg.optim.reg_weight * l2
    losses.update(model.extra_losses(batch, user_emb, item_emb))
    for cb in callbacks:
        losses.update(cb.extra_losses(batch, user_emb, item_emb))
    return losses


def evaluate_model(model: Any, ds: PreparedDataset, split: str, cfg: RunConfig
                   ) -> dict[str, float]:
    """Full-ranking metrics of `split` (val or test), training items masked."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        user_emb, item_emb = model(None)
        out = evaluate(user_emb, item_emb, ds.train, getattr(ds, split), cfg.eval.ks,
                       cfg.eval.user_chunk, cfg.eval.item_chunk)
    model.train(was_training)
    return out


def fit(cfg: RunConfig, out_dir: str | Path, *, resume: bool = False,
        model: torch.nn.Module | None = None, callbacks: Sequence[Callback] = (),
        say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train, early-stop on validation, test the best weights; returns metrics.json's content.

    The process writing `out_dir` holds its lock (a second writer is refused). Resuming a
    run whose checkpoint records the stop trains no further: it only finishes what is
    missing (best.pt, the test pass), or, when nothing is, returns metrics.json untouched
    and tells `say`. A callback's `on_checkpoint` returning True makes `fit` return
    {"stopped_after": epoch} right after that checkpoint (a simulated kill).
    """
    out = Path(out_dir)
    dist = Dist.from_env()
    if resume and not (out / CHECKPOINT).exists():
        raise ConfigError(f"--resume: no {CHECKPOINT} in {out}")
    with runfolder.locked(out) if dist.rank == 0 else nullcontext():  # rank 0 alone writes
        if dist.rank == 0:
            runfolder.clean_temp(out)  # a killed writer's half-written files
        saved = load_checkpoint(out, cfg) if resume else None
        if saved is not None and saved["state"]["stopped"]:
            done = finished_metrics(out)
            if done is not None:  # a finished run: nothing to train, nothing to rewrite
                return _nothing_to_do(out, done, dist, say)
        st = start(cfg, out, dist, model, saved, list(callbacks))
        return _loop(st)


def _loop(st: TrainState) -> dict[str, Any]:
    """Epochs of BPR, validation every train.eval_every epochs (and after the last), then
    the test pass of the best weights."""
    cfg = st.cfg
    st.progress = runlog.progress_bar(cfg.train.progress and st.main)
    st.task = st.progress.add_task("train", total=cfg.train.max_epochs, completed=st.epoch)
    # a stopped run (killed before its test pass) goes straight to the end
    first = cfg.train.max_epochs if st.counters["stopped"] else st.epoch
    with st.progress:
        for epoch in range(first, cfg.train.max_epochs):
            epoch_loss = train_epoch(st, epoch)
            last = epoch + 1 == cfg.train.max_epochs
            if (epoch + 1) % cfg.train.eval_every and not last:
                continue
            stop = validate(st, epoch_loss, last)
            if any([cb.on_checkpoint(st) for cb in st.callbacks]):  # every callback sees it
                return {"stopped_after": epoch + 1}
            if stop:
                break
    return finish(st)


def _nothing_to_do(out: Path, done: dict[str, Any], dist: Dist,
                   say: Callable[[str], None] | None) -> dict[str, Any]:
    if dist.rank != 0:
        return {}
    if say is not None:
        say(f"{out}: already finished (stopped after epoch {done.get('epochs')}, "
            f"best epoch {done.get('best_epoch')}); nothing to do")
    return done


def start(cfg: RunConfig, out: Path, dist: Dist, model: torch.nn.Module | None,
          saved: dict[str, Any] | None, callbacks: list[Callback]) -> TrainState:
    """Device, process group, data, seeded model, optimiser and sampler; then the
    checkpoint's state when resuming. Keep the order: it is the RNGs' (same seed, same run)."""
    device = pick_device(cfg.train.device, dist.local_rank)
    distributed.setup(dist.world_size, device)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    ds = load_dataset(cfg)
    seed = cfg.train.seed
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    model = (model if model is not None else build_model(cfg, ds)).to(device)
    # fused: one kernel for all parameters, ~3x faster steps on CPU
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.optim.lr,
                                 fused=device.type in ("cpu", "cuda"))
    sampler = BPRSampler(ds.train, np.random.default_rng(seed), dist.rank, dist.world_size)
    st = TrainState(cfg, out, dist, device, ds, model, optimizer, sampler,
                    best_weights=weights_copy(model), callbacks=callbacks)
    if saved is not None:
        restore(st, saved)
    if st.main:  # one writer: another rank's rewrite could drop rank 0's new lines
        _prepare_folder(st, resumed=saved is not None)
    if dist.world_size > 1:  # every rank starts from rank 0's state
        distributed.broadcast_state(model)
    return st


def _prepare_folder(st: TrainState, resumed: bool) -> None:
    """The log continues a resumed run (cut back to its checkpoint) or starts afresh; the
    config files are (re)written either way."""
    if resumed:
        runlog.truncate(st.out / LOG, st.epoch)
    else:
        st.out.mkdir(parents=True, exist_ok=True)
        (st.out / LOG).unlink(missing_ok=True)
    io.atomic_write_text(st.out / CONFIG, json.dumps(st.cfg.model_dump(), indent=2) + "\n")
    io.atomic_write_text(st.out / RESOLVED, json.dumps(resolved(st.cfg), indent=2) + "\n")


def train_epoch(st: TrainState, epoch: int) -> dict[str, float]:
    """One epoch of BPR over the sampler's batches; returns (and logs) its mean losses.
    Raises Diverged when one of them is not finite."""
    t0 = time.perf_counter()
    st.model.train()
    st.model.on_epoch_start(epoch)
    users, pos, neg = (torch.from_numpy(a).to(st.device) for a in st.sampler.epoch())
    batch_size = distributed.local_batch(st.cfg.train.batch_size, st.dist.world_size)
    sums: dict[str, torch.Tensor] = {}
    n_batches = 0
    for begin in range(0, len(users), batch_size):
        end = begin + batch_size
        losses = _step(st, (users[begin:end], pos[begin:end], neg[begin:end]))
        for k, v in losses.items():
            sums[k] = sums.get(k, 0.0) + v.detach()
        n_batches += 1
    epoch_loss = {k: float(v) / max(n_batches, 1) for k, v in sums.items()}
    if st.dist.world_size > 1:  # the global batch's losses; EMA teacher from rank 0
        epoch_loss = distributed.mean_over_ranks(epoch_loss)
        distributed.broadcast_state(st.model, trainable=False)
    epoch_loss["total"] = sum(epoch_loss.values())
    st.counters["epoch_seconds"].append(time.perf_counter() - t0)
    st.counters["epoch"] = epoch + 1
    if not all(math.isfinite(v) for v in epoch_loss.values()):
        raise _diverged(st, epoch_loss)
    if st.main:
        runlog.append(st.out / LOG, {"epoch": epoch + 1, "loss": epoch_loss,
                                     "seconds": st.counters["epoch_seconds"][-1]})
    st.show(f"loss {epoch_loss['total']:.4f}", advance=1)
    return epoch_loss


def _step(st: TrainState, batch: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
    """One optimiser step on one batch (gradients averaged over ranks); its loss terms."""
    user_emb, item_emb = st.model(None)
    losses = loss_terms(st.model, batch, user_emb, item_emb, st.cfg, st.callbacks)
    loss = sum(losses.values())
    st.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if st.dist.world_size > 1:
        distributed.average_gradients(st.model, st.dist.world_size)
    st.optimizer.step()
    return losses


def validate(st: TrainState, epoch_loss: dict[str, float], last: bool) -> bool:
    """Rank 0 validates, keeps the best weights, counts checks without progress and writes
    checkpoint.pt; returns whether to stop early (rank 0's decision, on every rank)."""
    stop = False
    if st.main:
        select, counters = st.cfg.eval.select, st.counters
        val = evaluate_model(st.model, st.ds, "val", st.cfg)
        if val[select] > counters["best_score"]:
            counters.update(best_score=val[select], best_epoch=st.epoch, best_val=val,
                            bad_checks=0)
            st.best_weights = weights_copy(st.model)
        else:
            counters["bad_checks"] += 1
        stop = counters["bad_checks"] >= st.cfg.train.patience
        counters["stopped"] = stop or last  # resuming from here goes to the test pass
        runlog.append(st.out / LOG, {"epoch": st.epoch, "val": val,
                                     "best_epoch": counters["best_epoch"]})
        st.show(f"loss {epoch_loss['total']:.4f} val {select} {val[select]:.4f} "
                f"(best {counters['best_score']:.4f})")
        ckpt.save(checkpoint_contents(st), st.out / CHECKPOINT)
    if st.dist.world_size > 1:
        stop = distributed.broadcast_flag(stop, st.device)
    return stop


def finish(st: TrainState) -> dict[str, Any]:
    """The best weights, saved as best.pt and tested once; metrics.json. Other ranks wait
    for rank 0's test pass and return {}."""
    distributed.dump_digest(st.model, st.dist.rank, st.dist.world_size)
    if not st.main:
        distributed.finish()  # wait for rank 0's test pass, then leave the group together
        return {}
    cfg, counters = st.cfg, st.counters
    st.model.load_state_dict(st.best_weights)
    ckpt.save({"model": st.best_weights, "config": cfg.model_dump(),
               "best_epoch": counters["best_epoch"]}, st.out / BEST)
    t0 = time.perf_counter()
    test = evaluate_model(st.model, st.ds, "test", cfg)
    result = {"test": test, "val": counters["best_val"], "best_epoch": counters["best_epoch"],
              "epochs": counters["epoch"],
              "seconds_per_epoch": float(np.mean(counters["epoch_seconds"])),
              "test_eval_seconds": time.perf_counter() - t0,
              "backbone": cfg.backbone["name"], "method": cfg.method, "data": cfg.data}
    if getattr(st.model, "text_stats", None):  # how much of the split the motivations cover
        result["text"] = st.model.text_stats
    io.atomic_write_text(st.out / METRICS, json.dumps(result, indent=2) + "\n")
    runlog.append(st.out / LOG, {"epoch": counters["epoch"], "test": test})
    runfolder.drop_aside(st.out)  # the run this one replaced (train --overwrite)
    distributed.finish()
    return result


def _diverged(st: TrainState, losses: dict[str, float]) -> Diverged:
    out = st.out
    bad = ", ".join(f"{k}={v}" for k, v in losses.items() if not math.isfinite(v))
    kept = "no checkpoint was written yet"
    if (out / CHECKPOINT).exists():
        kept = f"the last good checkpoint is kept in {out / CHECKPOINT}"
    return Diverged(f"{out}: epoch {st.epoch}: the training loss is not finite ({bad}); "
                    f"optim.lr={st.cfg.optim.lr:g} is likely too large: lower it (--set "
                    f"optim.lr=...) and train again with --overwrite; {kept}")


def read_config(run: str | Path) -> RunConfig:
    """A run's config.json, validated; errors name the file."""
    path = Path(run) / CONFIG
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path} not found") from None
    except json.JSONDecodeError as e:
        raise DataError(f"invalid JSON: {e.msg}", path=path, line=e.lineno) from e
    except (OSError, ValueError, RecursionError) as e:
        raise DataError(f"unreadable: {ckpt.one_line(e)}", path=path) from e
    if not isinstance(raw, dict):
        raise DataError("expected a JSON object", path=path)
    try:
        return build(RunConfig, [raw], source=str(path))
    except ConfigError as e:
        if str(e).startswith(str(path)):
            raise
        raise ConfigError(f"{path}: {e}") from e


def evaluate_run(run_dir: str | Path, split: str = "test") -> dict[str, float]:
    """Reload a run's best weights and dataset (from its stored config) and re-evaluate."""
    cfg, ds, model = load_run(run_dir, device=None)
    return evaluate_model(model, ds, split, cfg)


def load_run(run_dir: str | Path, device: str | torch.device | None = "cpu"
             ) -> tuple[RunConfig, PreparedDataset, torch.nn.Module]:
    """A finished run's config, dataset and model with its best weights, in eval mode, on
    ``device`` (None: the run's own `train.device`)."""
    run = Path(run_dir)
    if not (run / BEST).exists():
        raise ConfigError(f"{run}: no {BEST} (was the run finished?)")
    cfg = read_config(run)
    if device is None:
        device = pick_device(cfg.train.device)
    ds = load_dataset(cfg)
    model = build_model(cfg, ds).to(device)
    load_best(model, run, cfg, device)
    model.eval()
    return cfg, ds, model


def load_best(model: torch.nn.Module, run: Path, cfg: RunConfig,
              device: str | torch.device = "cpu") -> None:
    """Put a run's best.pt weights into `model`, checked to be this run's."""
    path = run / BEST
    saved = ckpt.load(path, device, keys=("model", "config"))
    check_origin(saved["config"], cfg, path)
    ckpt.load_weights(model, saved["model"], path)

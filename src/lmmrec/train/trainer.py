"""The training loop, top to bottom: data, model, BPR epochs, validation with early
stopping, checkpoints, then one test evaluation of the best weights.

Loss = BPR + L2 + the backbone's `extra_losses` + optional `aux_losses` (an aligner's),
all kept as a named dict. Anything with the Backbone interface can be trained, so an
alignment wrapper is passed as `model`.

Data-parallel under torchrun: rank / world size / device come from RANK, WORLD_SIZE,
LOCAL_RANK; each rank samples its shard with batch_size / WORLD_SIZE per step (so the global
batch is the single-process one), gradients are averaged over ranks after every backward
(`lmmrec.train.distributed`), only rank 0 evaluates and writes, and its early-stopping
decision is broadcast so every rank stops together.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lmmrec.config import build
from lmmrec.data.dataset import PreparedDataset
from lmmrec.errors import ConfigError, DataError, LmmrecError
from lmmrec.train import checkpoint as ckpt
from lmmrec.train import distributed, runfolder
from lmmrec.train.config import RunConfig, resolved
from lmmrec.train.sampler import BPRSampler

AuxLosses = Callable[[tuple, torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]
CHECKPOINT, BEST, CONFIG, LOG, METRICS, RESOLVED = (
    "checkpoint.pt", "best.pt", "config.json", "log.jsonl", "metrics.json", "resolved.json")
CHECKPOINT_KEYS = ("model", "optim", "rng", "state", "best_weights", "config")
STATE_KEYS = ("epoch", "best_score", "best_epoch", "best_val", "bad_checks", "epoch_seconds")


class Diverged(LmmrecError):
    """The training loss became NaN or infinite."""


@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> Dist:
        env = os.environ
        return cls(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)),
                   int(env.get("LOCAL_RANK", 0)))


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        name = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    elif name == "cuda":
        name = f"cuda:{local_rank}"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device={name} but CUDA is not available")
    return torch.device(name)


def load_dataset(cfg: RunConfig) -> PreparedDataset:
    """The prepared dataset named by cfg.data, checked against the eval settings."""
    if not cfg.data:
        raise ConfigError("no dataset: pass --data DIR (a prepared dataset folder)")
    ds = PreparedDataset.load(cfg.data)
    if max(cfg.eval.ks) > ds.n_items:
        raise ConfigError(f"eval.ks: K={max(cfg.eval.ks)} is larger than the catalogue "
                          f"({ds.n_items} items)")
    from lmmrec.data.preprocess import SATURATION_ITEMS_PER_K

    k = int(cfg.eval.select.partition("@")[2])
    if ds.n_items <= SATURATION_ITEMS_PER_K * k:
        import warnings

        warnings.warn(f"eval.select={cfg.eval.select} on {ds.n_items} items: near 1 for any "
                      "model, so early stopping on it is arbitrary; choose a smaller K "
                      "(--set eval.ks=[1,3,5] --set eval.select=recall@5)", stacklevel=2)
    return ds


def build_model(cfg: RunConfig, ds: PreparedDataset) -> torch.nn.Module:
    """The backbone, wrapped with the method's aligner unless the method is 'base'."""
    from lmmrec.align.build import wrap
    from lmmrec.backbones import build_backbone

    backbone = build_backbone(cfg.backbone["name"], ds.n_users, ds.n_items, ds.train,
                              cfg.backbone_config)
    return wrap(backbone, cfg.method, cfg.align_config, ds, cfg.motivations)


def loss_terms(model: Any, batch: tuple, user_emb: torch.Tensor, item_emb: torch.Tensor,
               cfg: RunConfig, aux_losses: AuxLosses | None = None) -> dict[str, torch.Tensor]:
    """Every named loss term of one batch; the training loss is their sum."""
    users, pos, neg = batch
    u = user_emb[users]
    margin = (u * item_emb[neg]).sum(-1) - (u * item_emb[pos]).sum(-1)
    losses = {"bpr": torch.nn.functional.softplus(margin).mean()}
    if cfg.optim.reg_weight > 0:
        if cfg.optim.reg == "params":
            l2 = sum(p.square().sum() for p in model.parameters() if p.requires_grad)
        else:
            l2 = sum(e.square().sum() for e in model.ego_embeddings(batch)) / (2 * len(users))
        losses["l2"] = cfg.optim.reg_weight * l2
    losses.update(model.extra_losses(batch, user_emb, item_emb))
    if aux_losses is not None:
        losses.update(aux_losses(batch, user_emb, item_emb))
    return losses


def evaluate_model(model: Any, ds: PreparedDataset, split: str, cfg: RunConfig
                   ) -> dict[str, float]:
    """Full-ranking metrics of `split` (val or test), training items masked."""
    from lmmrec.eval.ranking import evaluate

    was_training = model.training
    model.eval()
    with torch.no_grad():
        user_emb, item_emb = model(None)
        out = evaluate(user_emb, item_emb, ds.train, getattr(ds, split), cfg.eval.ks,
                       cfg.eval.user_chunk, cfg.eval.item_chunk)
    model.train(was_training)
    return out


def fit(cfg: RunConfig, out_dir: str | Path, *, resume: bool = False,
        model: torch.nn.Module | None = None, aux_losses: AuxLosses | None = None,
        stop_after_epochs: int | None = None,
        say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train, early-stop on validation, test the best weights; returns metrics.json's content.

    The process writing `out_dir` holds its lock (a second writer is refused). Resuming a
    run whose checkpoint records the stop trains no further: it only finishes what is
    missing (best.pt, the test pass), or, when nothing is, returns metrics.json untouched
    and tells `say`. `stop_after_epochs` returns right after that epoch's checkpoint
    (simulates a kill).
    """
    out = Path(out_dir)
    dist = Dist.from_env()
    if resume and not (out / CHECKPOINT).exists():
        raise ConfigError(f"--resume: no {CHECKPOINT} in {out}")
    with runfolder.locked(out) if dist.rank == 0 else nullcontext():  # rank 0 alone writes
        return _fit(cfg, out, dist, resume, model, aux_losses, stop_after_epochs, say)


def _fit(cfg: RunConfig, out: Path, dist: Dist, resume: bool, model: torch.nn.Module | None,
         aux_losses: AuxLosses | None, stop_after_epochs: int | None,
         say: Callable[[str], None] | None) -> dict[str, Any]:
    main = dist.rank == 0
    if main:
        runfolder.clean_temp(out)  # a killed writer's half-written files
    saved = _load_checkpoint(out, cfg) if resume else None
    if saved is not None and saved["state"]["stopped"]:
        done = finished_metrics(out)
        if done is not None:  # a finished run: nothing to train, nothing to rewrite
            if main and say is not None:
                say(f"{out}: already finished (stopped after epoch {done.get('epochs')}, "
                    f"best epoch {done.get('best_epoch')}); nothing to do")
            return done if main else {}
    device = pick_device(cfg.train.device, dist.local_rank)
    distributed.setup(dist.world_size, device)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    ds = load_dataset(cfg)

    # -- seeds, model, optimiser, sampler ----------------------------------------------------
    seed = cfg.train.seed
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    model = (model if model is not None else build_model(cfg, ds)).to(device)
    # fused: one kernel for all parameters, ~3x faster steps on CPU
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.optim.lr,
                                 fused=device.type in ("cpu", "cuda"))
    sampler = BPRSampler(ds.train, np.random.default_rng(seed), dist.rank, dist.world_size)
    state: dict[str, Any] = {"epoch": 0, "best_score": -math.inf, "best_epoch": -1,
                             "best_val": {}, "bad_checks": 0, "epoch_seconds": [],
                             "stopped": False}
    best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}

    if saved is not None:
        path = out / CHECKPOINT
        ckpt.load_weights(model, saved["best_weights"], path)  # checked now, used at the end
        ckpt.load_weights(model, saved["model"], path)
        try:
            optimizer.load_state_dict(saved["optim"])
            ckpt.set_rng_state(saved["rng"], sampler.rng)
        except Exception as e:  # a damaged or foreign checkpoint that still unpickled
            raise DataError(f"cannot restore the optimiser or RNG state: {ckpt.one_line(e)}",
                            path=path) from e
        state, best_weights = saved["state"], saved["best_weights"]
        if main:  # one writer: another rank's rewrite could drop rank 0's new lines
            _truncate_log(out / LOG, state["epoch"])
    elif main:
        out.mkdir(parents=True, exist_ok=True)
        (out / LOG).unlink(missing_ok=True)
    if main:
        ckpt.write_text(out / CONFIG, json.dumps(cfg.model_dump(), indent=2) + "\n")
        ckpt.write_text(out / RESOLVED, json.dumps(resolved(cfg), indent=2) + "\n")

    if dist.world_size > 1:  # every rank starts from rank 0's state
        distributed.broadcast_state(model)
    batch_size = distributed.local_batch(cfg.train.batch_size, dist.world_size)
    select = cfg.eval.select
    progress = _progress(cfg.train.progress and main)
    task = progress.add_task("train", total=cfg.train.max_epochs, completed=state["epoch"])
    # a stopped run (killed before its test pass) goes straight to the end
    first = cfg.train.max_epochs if state["stopped"] else state["epoch"]
    with progress:
        for epoch in range(first, cfg.train.max_epochs):
            # -- one epoch of BPR --------------------------------------------------------------
            t0 = time.perf_counter()
            model.train()
            model.on_epoch_start(epoch)
            users, pos, neg = (torch.from_numpy(a).to(device) for a in sampler.epoch())
            sums: dict[str, torch.Tensor] = {}
            n_batches = 0
            for start in range(0, len(users), batch_size):
                end = start + batch_size
                batch = (users[start:end], pos[start:end], neg[start:end])
                user_emb, item_emb = model(None)
                losses = loss_terms(model, batch, user_emb, item_emb, cfg, aux_losses)
                loss = sum(losses.values())
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if dist.world_size > 1:
                    distributed.average_gradients(model, dist.world_size)
                optimizer.step()
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0.0) + v.detach()
                n_batches += 1
            epoch_loss = {k: float(v) / max(n_batches, 1) for k, v in sums.items()}
            if dist.world_size > 1:  # the global batch's losses; EMA teacher from rank 0
                epoch_loss = distributed.mean_over_ranks(epoch_loss)
                distributed.broadcast_state(model, trainable=False)
            epoch_loss["total"] = sum(epoch_loss.values())
            state["epoch_seconds"].append(time.perf_counter() - t0)
            state["epoch"] = epoch + 1
            if not all(math.isfinite(v) for v in epoch_loss.values()):
                raise _diverged(cfg, out, epoch + 1, epoch_loss)
            if main:
                _log(out, {"epoch": epoch + 1, "loss": epoch_loss,
                           "seconds": state["epoch_seconds"][-1]})
            progress.update(task, advance=1, description=f"loss {epoch_loss['total']:.4f}")

            # -- validation, early stopping, checkpoint ----------------------------------------
            last = epoch + 1 == cfg.train.max_epochs
            if (epoch + 1) % cfg.train.eval_every and not last:
                continue
            stop = False
            if main:
                val = evaluate_model(model, ds, "val", cfg)
                if val[select] > state["best_score"]:
                    state.update(best_score=val[select], best_epoch=epoch + 1, best_val=val,
                                 bad_checks=0)
                    best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
                else:
                    state["bad_checks"] += 1
                stop = state["bad_checks"] >= cfg.train.patience
                state["stopped"] = stop or last  # resuming from here goes to the test pass
                _log(out, {"epoch": epoch + 1, "val": val, "best_epoch": state["best_epoch"]})
                progress.update(task, description=f"loss {epoch_loss['total']:.4f} "
                                f"val {select} {val[select]:.4f} (best {state['best_score']:.4f})")
                ckpt.save({"model": model.state_dict(), "optim": optimizer.state_dict(),
                           "rng": ckpt.rng_state(sampler.rng), "state": state,
                           "best_weights": best_weights, "config": cfg.model_dump()},
                          out / CHECKPOINT)
            if dist.world_size > 1:
                stop = distributed.broadcast_flag(stop, device)
            if stop_after_epochs is not None and epoch + 1 >= stop_after_epochs:
                return {"stopped_after": epoch + 1}
            if stop:
                break

    # -- the best weights, tested once -----------------------------------------------------------
    distributed.dump_digest(model, dist.rank, dist.world_size)
    if not main:
        distributed.finish()  # wait for rank 0's test pass, then leave the group together
        return {}
    model.load_state_dict(best_weights)
    ckpt.save({"model": best_weights, "config": cfg.model_dump(),
               "best_epoch": state["best_epoch"]}, out / BEST)
    t0 = time.perf_counter()
    test = evaluate_model(model, ds, "test", cfg)
    result = {"test": test, "val": state["best_val"], "best_epoch": state["best_epoch"],
              "epochs": state["epoch"],
              "seconds_per_epoch": float(np.mean(state["epoch_seconds"])),
              "test_eval_seconds": time.perf_counter() - t0,
              "backbone": cfg.backbone["name"], "method": cfg.method, "data": cfg.data}
    if getattr(model, "text_stats", None):  # how much of the split the motivations cover
        result["text"] = model.text_stats
    ckpt.write_text(out / METRICS, json.dumps(result, indent=2) + "\n")
    _log(out, {"epoch": state["epoch"], "test": test})
    runfolder.drop_aside(out)  # the run this one replaced (train --overwrite)
    distributed.finish()
    return result


def _diverged(cfg: RunConfig, out: Path, epoch: int, losses: dict[str, float]) -> Diverged:
    bad = ", ".join(f"{k}={v}" for k, v in losses.items() if not math.isfinite(v))
    kept = "no checkpoint was written yet"
    if (out / CHECKPOINT).exists():
        kept = f"the last good checkpoint is kept in {out / CHECKPOINT}"
    return Diverged(f"{out}: epoch {epoch}: the training loss is not finite ({bad}); optim.lr="
                    f"{cfg.optim.lr:g} is likely too large: lower it (--set optim.lr=...) and "
                    f"train again with --overwrite; {kept}")


def _load_checkpoint(out: Path, cfg: RunConfig) -> dict[str, Any]:
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


def _log(out: Path, record: dict[str, Any]) -> None:
    try:
        with open(out / LOG, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
    except OSError as e:
        raise ckpt.WriteError(f"{out / LOG}: could not append to it ({e.strerror or e})") from e


def _truncate_log(path: Path, epoch: int) -> None:
    """Drop log lines past the checkpoint being resumed, so the log reads as one run.
    Lines that do not parse (a write cut short by a kill) are dropped too."""
    if not path.exists():
        return
    kept = []
    for ln in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(ln)
        except ValueError:
            continue
        if isinstance(rec, dict) and "test" not in rec and rec.get("epoch", 0) <= epoch:
            kept.append(ln)
    ckpt.write_text(path, "".join(ln + "\n" for ln in kept))


def _progress(enabled: bool):  # noqa: ANN202
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    # stderr: stdout stays free for machine-readable output.
    return Progress(TextColumn("epoch"), MofNCompleteColumn(), BarColumn(),
                    TextColumn("{task.description}"), TimeElapsedColumn(), disable=not enabled,
                    console=Console(stderr=True))


def evaluate_run(run_dir: str | Path, split: str = "test") -> dict[str, float]:
    """Reload a run's best weights and dataset (from its stored config) and re-evaluate."""
    run = Path(run_dir)
    if not (run / BEST).exists():
        raise ConfigError(f"{run}: no {BEST} (was the run finished?)")
    cfg = read_config(run)
    device = pick_device(cfg.train.device)
    ds = load_dataset(cfg)
    model = build_model(cfg, ds).to(device)
    load_best(model, run, cfg, device)
    return evaluate_model(model, ds, split, cfg)


def load_best(model: torch.nn.Module, run: Path, cfg: RunConfig,
              device: str | torch.device = "cpu") -> None:
    """Put a run's best.pt weights into `model`, checked to be this run's."""
    path = run / BEST
    saved = ckpt.load(path, device, keys=("model", "config"))
    check_origin(saved["config"], cfg, path)
    ckpt.load_weights(model, saved["model"], path)

"""Trainer: determinism, resume after a simulated kill, checkpoints, the sampler."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from lmmrec.train import checkpoint as ckpt
from lmmrec.train.callbacks import Callback, StopAfter
from lmmrec.train.config import resolve_config
from lmmrec.train.distributed import Dist, pick_device
from lmmrec.train.sampler import BPRSampler
from lmmrec.train.trainer import evaluate_run, fit

SETS = ["train.max_epochs=4", "train.eval_every=1", "train.batch_size=1024",
        "train.progress=false", "train.threads=1", "optim.lr=0.01",
        f"train.device={os.environ.get('LMMREC_TEST_DEVICE', 'cpu')}"]


def small(name: str, data) -> object:  # noqa: ANN001
    return resolve_config(name, overrides=[f"data={data}", *SETS])


def test_resume_matches_uninterrupted_run(amazon_cut, tmp_path):
    cfg = small("lightgcn", amazon_cut)  # edge dropout: exercises the torch RNG state
    full = fit(cfg, tmp_path / "full")
    again = fit(cfg, tmp_path / "again")
    assert again["test"] == full["test"]  # same seed, same machine

    killed = fit(cfg, tmp_path / "killed", callbacks=[StopAfter(2)])
    assert killed == {"stopped_after": 2}
    assert not (tmp_path / "killed" / "metrics.json").exists()
    resumed = fit(cfg, tmp_path / "killed", resume=True)
    assert resumed["test"] == full["test"]
    assert resumed["best_epoch"] == full["best_epoch"]
    log = [json.loads(ln) for ln in (tmp_path / "killed" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log if "loss" in r] == [1, 2, 3, 4]


# The trainer's numbers for `small("lightgcn")` on the committed RLMRec cut (CPU, one
# thread), recorded before the loop was split into steps: a refactor must not move them.
# Pinned to float32 noise, so another CPU's summation order still passes; an intended change
# of the training numbers updates them here, knowingly.
PINNED_BPR = [0.57304447889328, 0.24548499286174774, 0.11564375460147858, 0.07317530363798141]
PINNED_TEST = {"recall@20": 0.10444660329411384, "ndcg@20": 0.07336372997666127}


@pytest.mark.skipif(os.environ.get("LMMREC_TEST_DEVICE", "cpu") != "cpu",
                    reason="the pinned numbers are CPU ones")
def test_pinned_lightgcn_run(amazon_cut, tmp_path):
    result = fit(small("lightgcn", amazon_cut), tmp_path)
    log = [json.loads(ln) for ln in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["loss"]["bpr"] for r in log if "loss" in r] == pytest.approx(PINNED_BPR, rel=1e-5)
    assert {k: result["test"][k] for k in PINNED_TEST} == pytest.approx(PINNED_TEST, rel=1e-4)
    assert (result["best_epoch"], result["epochs"]) == (4, 4)


def test_checkpoint_contents_load_weights_only(amazon_cut, tmp_path):
    fit(small("simgcl", amazon_cut), tmp_path, callbacks=[StopAfter(1)])
    saved = ckpt.load(tmp_path / "checkpoint.pt")  # weights_only=True
    assert {"model", "optim", "rng", "state", "best_weights", "config"} <= set(saved)
    assert saved["state"]["epoch"] == 1
    assert {"torch", "numpy", "python", "sampler"} <= set(saved["rng"])


def test_evaluate_run_reproduces_test_metrics(amazon_cut, tmp_path):
    result = fit(small("mf", amazon_cut), tmp_path)
    again = evaluate_run(tmp_path)
    for k, v in result["test"].items():
        assert again[k] == pytest.approx(v, abs=1e-9)


class Aux(Callback):
    """An extra loss term that records the batch sizes it saw."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def extra_losses(self, batch, user_emb, item_emb):  # noqa: ANN001, ANN201
        self.calls.append(len(batch[0]))
        return {"aux": 0.0 * user_emb.sum()}


def test_callback_extra_losses_are_added(amazon_cut, tmp_path):
    aux = Aux()
    fit(resolve_config("mf", overrides=[f"data={amazon_cut}", *SETS, "train.max_epochs=1"]),
        tmp_path, callbacks=[aux])
    assert aux.calls and max(aux.calls) <= 1024
    log = [json.loads(ln) for ln in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert "aux" in log[0]["loss"]


def test_sampler_negatives_and_shards():
    rng = np.random.default_rng(0)
    train = sp.csr_matrix((rng.random((50, 12)) < 0.6).astype(np.float32))
    train = train.tolil()
    train[0, :11] = 1  # a user with a single negative item left
    train[0, 11] = 0
    train = sp.csr_matrix(train)
    train.eliminate_zeros()
    s = BPRSampler(train, np.random.default_rng(1))
    users, pos, neg = s.epoch()
    assert len(users) == train.nnz
    dense = train.toarray() > 0
    assert dense[users, pos].all() and not dense[users, neg].any()
    assert (neg[users == 0] == 11).all()
    shards = [BPRSampler(train, np.random.default_rng(1), r, 3).epoch() for r in range(3)]
    assert sum(len(sh[0]) for sh in shards) == train.nnz
    pairs = {(u, p) for sh in shards for u, p in zip(sh[0], sh[1], strict=True)}
    assert len(pairs) == train.nnz  # disjoint and complete


def test_device_from_env(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert Dist.from_env() == Dist(1, 2, 1)
    assert pick_device("cpu") == torch.device("cpu")

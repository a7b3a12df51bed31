"""Growth benchmark (issue 22, point 1): how preparing, training and evaluating grow with
the interaction graph, and where this machine runs out of memory.

A seeded synthetic power-law graph at 10^5, 10^6 and 10^7 interactions (users and items
grow with it: N/10 users, N/20 items; user activity and item popularity Zipf-distributed),
plus RLMRec's Yelp split as an anchor point. For every size each phase runs in a fresh
process, so its peak RSS (ru_maxrss) is its own, under an address-space guard (RLIMIT_AS,
3 GiB under what the machine has free): past it an allocation fails at once, and running
out is recorded as a result, not a crash:

  prepare  the synthetic table (Parquet) through `prepare_to(path, fmt="table")`, which is
           what `lmmrec data prepare PATH --format table` runs; Yelp: `prepare_to("rlmrec-yelp")`
  base     LightGCN seconds per epoch through the trainer (`start`, its `_step`,
           `train_epoch`): K timed steps after warm-up, extrapolated to an epoch (sampling +
           steps/epoch x mean step), and a whole measured epoch where that estimate is under
           --epoch-cap seconds
  lmmrec   the same with --method lmmrec on a synthetic motivation artifact (random unit
           384-d phrase vectors, a few phrases per review, for a share of the reviews),
           with the shipped settings and again with align.teacher_refresh=step (the EMA
           teacher on each aligned step's rows, not on every user and item once an epoch)
  eval     full-ranking test evaluation (`lmmrec.eval.ranking.evaluate`) of the model's
           embeddings, per chunk setting (default, item chunks, small user chunks, float16
           scores, one dense block), each with its own peak: a seeded user subsample
           extrapolated linearly, and the whole test set where that estimate is under
           --eval-cap seconds

Exponents are fitted by least squares on log-log over the synthetic sizes (Yelp is shown,
not fitted); the memory fits give the size at which each phase would need this machine's RAM.

    python benchmarks/bench_growth.py [--sizes 1e5,1e6,1e7] [--no-yelp] [--steps 16]
        [--warmup 8] [--eval-users 4096] [--epoch-cap 120] [--eval-cap 60]
    python benchmarks/bench_growth.py --from-json benchmarks/results/growth.json

About 25 minutes on 2 busy cores. Writes benchmarks/results/growth.json, growth.md and
growth.png (atomically); --from-json measures nothing and writes the fits, tables and plot
again from a run's JSON. Work files (tables, prepared sets, artifacts, runs) live in
runs/bench/growth/ (~1 GiB at 10^7).
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lmmrec.align.aligners.lmmrec import CHUNK_ROWS
from lmmrec.text.synthetic import TEXT_DIM, zipf_weights

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(os.environ.get("LMMREC_BENCH_RESULTS") or REPO / "benchmarks" / "results")
RUNS = Path(os.environ.get("LMMREC_BENCH_RUNS") or REPO / "runs" / "bench") / "growth"
GIB = 1 << 30
MIB = 1 << 20
TABLE_COLUMNS = "user=user_id,item=item_id,rating=rating,time=timestamp"
FLOAT_BYTES = {"float32": 4, "float16": 2}
BASE, LMMREC = "base", "lmmrec"
# LMMRec with its EMA teacher run on each aligned step's sampled rows, not on every user and
# item once an epoch: the setting that keeps the teacher's whole-catalogue pass out of memory
LMMREC_LEAN = "lmmrec+align.teacher_refresh=step"


# -- the synthetic graph ---------------------------------------------------------------------


@dataclass(frozen=True)
class GraphSpec:
    """A synthetic interaction graph: `n` distinct (user, item) pairs.

    Users and items grow with `n` (`n // users_per`, `n // items_per`), so the mean user
    degree is `users_per` and the mean item degree `items_per` at every size. Every user and
    item gets one interaction, the rest are drawn independently: the user by Zipf weights
    rank^-user_exponent, the item by rank^-item_exponent (degree tails ~ d^-(1+1/exponent):
    3 for users, 2.25 for items, as in review data), duplicates redrawn."""

    n: int
    users_per: int = 10
    items_per: int = 20
    user_exponent: float = 0.5
    item_exponent: float = 0.8
    seed: int = 0

    @property
    def n_users(self) -> int:
        return max(self.n // self.users_per, 2)

    @property
    def n_items(self) -> int:
        return max(self.n // self.items_per, 2)


def _unique_in_order(keys: np.ndarray) -> np.ndarray:
    _, first = np.unique(keys, return_index=True)
    return keys[np.sort(first)]


def generate_pairs(spec: GraphSpec) -> tuple[np.ndarray, np.ndarray]:
    """Dense (user, item) indices of `spec.n` distinct pairs, seeded; popularity rank r is
    index r (the ids that leave this module are shuffled)."""
    rng = np.random.default_rng(spec.seed)
    nu, ni = spec.n_users, spec.n_items
    if spec.n < nu + ni or spec.n > nu * ni // 2:
        raise ValueError(f"n={spec.n} cannot be a graph of {nu} users and {ni} items")
    pu, pi = zipf_weights(nu, spec.user_exponent), zipf_weights(ni, spec.item_exponent)
    # one interaction per user and per item first (so every one exists), then by weight
    users = np.concatenate([np.arange(nu), rng.choice(nu, ni, p=pu)])
    items = np.concatenate([rng.choice(ni, nu, p=pi), np.arange(ni)])
    keys = _unique_in_order(users.astype(np.int64) * ni + items)
    while len(keys) < spec.n:  # duplicates (heavy user x popular item) are redrawn
        m = int((spec.n - len(keys)) * 1.05) + 16
        more = rng.choice(nu, m, p=pu).astype(np.int64) * ni + rng.choice(ni, m, p=pi)
        keys = _unique_in_order(np.concatenate([keys, more]))
    keys = keys[: spec.n]
    return keys // ni, keys % ni


def generate(spec: GraphSpec) -> Any:
    """The synthetic interactions as a raw table (pandas): string user_id / item_id (ids
    shuffled, so popularity is not id order), rating 1-5, unix timestamp."""
    import pandas as pd

    users, items = generate_pairs(spec)
    rng = np.random.default_rng([spec.seed, 1])
    user_name = rng.permutation(spec.n_users)
    item_name = rng.permutation(spec.n_items)
    return pd.DataFrame({
        "user_id": "u" + pd.Series(user_name[users]).astype(str),
        "item_id": "i" + pd.Series(item_name[items]).astype(str),
        "rating": rng.integers(1, 6, size=spec.n).astype(np.int8),
        "timestamp": rng.integers(1_400_000_000, 1_700_000_000, size=spec.n),
    })


def write_table(spec: GraphSpec, path: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    df = generate(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, path)  # a killed run leaves no half table behind
    return {"seconds": time.perf_counter() - t0, "rows": len(df), "bytes": path.stat().st_size}


# -- fits ------------------------------------------------------------------------------------


def fit_power_law(xs: Sequence[float], ys: Sequence[float]) -> dict[str, float]:
    """y = c * x^b by least squares on log10-log10: exponent b, coefficient c, r2."""
    lx, ly = np.log10(np.asarray(xs, float)), np.log10(np.asarray(ys, float))
    if len(lx) < 2 or np.ptp(lx) == 0:
        raise ValueError("a fit needs at least two distinct sizes")
    b, a = np.polyfit(lx, ly, 1)
    resid = ly - (a + b * lx)
    ss = float(((ly - ly.mean()) ** 2).sum())
    r2 = 1.0 - float((resid ** 2).sum()) / ss if ss > 0 else 1.0
    return {"exponent": float(b), "coefficient": float(10 ** a), "r2": r2}


def crossing(fit: dict[str, float], limit: float) -> float | None:
    """The x at which the fitted y reaches `limit` (None when y does not grow)."""
    if fit["exponent"] <= 0:
        return None
    log_x = (math.log10(limit) - math.log10(fit["coefficient"])) / fit["exponent"]
    return float(10 ** log_x) if log_x < 30 else None  # past 10^30: never, in practice


# -- memory: peak RSS, guard -----------------------------------------------------------------


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        line = next(x for x in f if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


BASELINE: dict[str, float] = {}  # the running phase's RSS after its imports


def mark_baseline() -> float:
    """RSS once a phase's imports are done, before it reads any data: what the process holds
    whatever the size. Kept here too, so a phase that runs out still reports it."""
    BASELINE["mib"] = rss_mib()
    return BASELINE["mib"]


def reset_peak() -> bool:
    """Reset this process's peak RSS to its current RSS (Linux >= 4.0), so one process can
    report the peak of each of several steps."""
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def meminfo_gib(key: str) -> float:
    with open("/proc/meminfo") as f:
        line = next(x for x in f if x.startswith(key + ":"))
    return int(line.split()[1]) / (1 << 20)


def guard_limit(cap_gib: float) -> int:
    """Bytes of address space a child may map: `cap_gib`, kept 3 GiB under what is
    available now (other jobs share this machine)."""
    return int(min(cap_gib, meminfo_gib("MemAvailable") - 3.0) * GIB)


def set_guard(limit: int) -> None:
    """An allocation past `limit` then fails at once (MemoryError / allocator error)
    instead of pushing the machine into swapless OOM kills."""
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def out_of_memory(e: BaseException) -> bool:
    msg = str(e)
    return isinstance(e, MemoryError) or (isinstance(e, RuntimeError) and (
        "can't allocate memory" in msg or "not enough memory" in msg
        or "DefaultCPUAllocator" in msg))


# -- phases (each runs in its own child process) ---------------------------------------------


def phase_generate(args: dict[str, Any]) -> dict[str, Any]:
    spec = GraphSpec(**args["spec"])
    return write_table(spec, Path(args["table"]))


def phase_prepare(args: dict[str, Any]) -> dict[str, Any]:
    """`lmmrec data prepare` in-process: the library call behind the CLI."""
    from lmmrec.data.pipeline import prepare_to

    baseline = mark_baseline()
    t0 = time.perf_counter()
    options = args.get("options") or {}
    ds = prepare_to(args["source"], Path(args["out"]), overwrite=True, **options)
    seconds = time.perf_counter() - t0
    s = ds.stats()
    return {"seconds": seconds, "peak_rss_mib": peak_rss_mib(), "baseline_rss_mib": baseline,
            "n_users": ds.n_users,
            "n_items": ds.n_items, "n_interactions": len(ds.interactions),
            "n_train": int((ds.interactions["split"] == "train").sum()),
            "n_test": int((ds.interactions["split"] == "test").sum()), "stats": s}


def write_synthetic_artifact(data: Path, out: Path, share: float, seed: int = 0,
                             dim: int = TEXT_DIM) -> dict[str, Any]:
    """lmmrec.text.synthetic's artifact of random motivations for a seeded `share` of the
    interactions, and how long writing it took."""
    from lmmrec.text.synthetic import write_synthetic_artifact as write

    t0 = time.perf_counter()
    info = write(data, out, share=share, seed=seed, dim=dim)
    return {"seconds": time.perf_counter() - t0, **info}


def _train_config(data: Path, method: str, motivations: Path | None) -> Any:
    """The run config of `method` ("lmmrec" or "lmmrec+KEY=VALUE+...", as bench_overhead
    names its rows), as `lmmrec train --backbone lightgcn` would resolve it."""
    from lmmrec.train.config import resolve_config

    name, *overrides = method.split("+")
    base: dict[str, Any] = {"data": str(data), "method": name}
    if motivations is not None and name != BASE:
        base["motivations"] = str(motivations)
    return resolve_config("lightgcn", [], ["train.progress=false", "train.device=cpu",
                                           "train.max_epochs=2", *overrides], base=base)


def phase_train(args: dict[str, Any]) -> dict[str, Any]:
    """Seconds per epoch of one method: set-up, sampling, K steady steps (after warm-up),
    the EMA teacher's once-an-epoch refresh (LMMRec), and a whole epoch when the estimate
    is under the cap."""
    import torch

    from lmmrec.train import trainer
    from lmmrec.train.distributed import Dist

    baseline = mark_baseline()
    data, method = Path(args["data"]), args["method"]
    motivations = Path(args["motivations"]) if args.get("motivations") else None
    cfg = _train_config(data, method, motivations)
    t0 = time.perf_counter()
    st = trainer.start(cfg, Path(args["run"]), Dist.from_env(), None, None, [])
    setup_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    st.model.train()
    st.model.on_epoch_start(0)
    users, pos, neg = (torch.from_numpy(a) for a in st.sampler.epoch())
    sample_s = time.perf_counter() - t0
    bs = cfg.train.batch_size
    n_steps = math.ceil(len(users) / bs)
    times = []
    for k in range(args["warmup"] + args["steps"]):
        lo = (k % n_steps) * bs
        t0 = time.perf_counter()
        trainer._step(st, (users[lo:lo + bs], pos[lo:lo + bs], neg[lo:lo + bs]))
        times.append(time.perf_counter() - t0)
    step_s = float(np.mean(times[args["warmup"]:]))
    teacher_s = 0.0
    aligner = getattr(st.model, "aligner", None)
    if getattr(aligner, "teacher_backbone", None) is not None \
            and cfg.align_config.teacher_refresh == "epoch":
        # once an epoch: every user and item through the teacher (per step, it is in the steps)
        t0 = time.perf_counter()
        aligner._teacher_outputs()
        teacher_s = time.perf_counter() - t0
    estimate = sample_s + n_steps * step_s + teacher_s
    out = {"method": method, "setup_s": setup_s, "sample_s": sample_s, "step_s": step_s,
           "warmup": args["warmup"], "timed_steps": args["steps"],
           "steps_per_epoch": n_steps, "batch_size": bs, "teacher_refresh_s": teacher_s,
           "epoch_s_extrapolated": estimate, "epoch_s_measured": None,
           "align_every": getattr(aligner, "every", None), "baseline_rss_mib": baseline,
           "dim": st.model.dim, "n_nodes": st.model.n_users + st.model.n_items,
           # the text encoder's hidden width: what the teacher refresh holds per entity
           "text_hidden": aligner.text.mlp[0].out_features if aligner is not None else None,
           "text_stats": getattr(st.model, "text_stats", None) or None}
    if estimate <= args["epoch_cap"]:
        trainer.train_epoch(st, 1)
        out["epoch_s_measured"] = st.counters["epoch_seconds"][-1]
    out["epoch_s"] = out["epoch_s_measured"] or estimate
    out["extrapolated"] = out["epoch_s_measured"] is None
    out["peak_rss_mib"] = peak_rss_mib()
    return out


@dataclass(frozen=True)
class EvalSetting:
    """One way to run the full-ranking evaluation; `user_chunk` 0 = every test user in one
    block (dense), `item_chunk` None = the whole catalogue per block."""

    name: str
    user_chunk: int = 2048
    item_chunk: int | None = None
    dtype: str = "float32"
    note: str = ""

    def block_bytes(self, n_eval_users: int, n_items: int) -> int:
        """Bytes of one score block (user_chunk x item_chunk scores)."""
        rows = self.user_chunk or n_eval_users
        return min(rows, n_eval_users) * min(self.item_chunk or n_items, n_items) * \
            FLOAT_BYTES[self.dtype]


SETTINGS = (
    EvalSetting("default", note="eval.user_chunk=2048, every item at once (shipped default)"),
    EvalSetting("item chunks", item_chunk=65536,
                note="--set eval.item_chunk=65536 (docs/SCALING.md)"),
    EvalSetting("user chunks", user_chunk=256, note="--set eval.user_chunk=256"),
    EvalSetting("float16 scores", dtype="float16",
                note="default chunks, embeddings cast to float16 before `evaluate` "
                     "(not a config key)"),
    EvalSetting("dense", user_chunk=0, note="every test user in one block, every item "
                                            "(what eval.user_chunk >= test users does)"),
)


def _heldout_rows(heldout: Any, users: np.ndarray) -> Any:
    """`heldout` with only `users`' rows kept (the evaluator ranks users with held-out items)."""
    import scipy.sparse as sp

    keep = np.zeros(heldout.shape[0], dtype=np.float32)
    keep[users] = 1.0
    sub = sp.csr_matrix(sp.diags(keep) @ heldout)
    sub.eliminate_zeros()
    return sub


def _run_setting(s: EvalSetting, user_emb: Any, item_emb: Any, ds: Any, sample: np.ndarray,
                 n_eval: int, ks: list[int], cap: float) -> dict[str, Any]:
    """One setting with its own peak RSS: the seeded sample, scaled to every test user, then
    every test user when that estimate is under `cap` s. Dense is one block of every test
    user or nothing (a sample would not be the dense block)."""
    import torch

    from lmmrec.eval.ranking import evaluate

    dtype = torch.float16 if s.dtype == "float16" else torch.float32
    u, i = user_emb.to(dtype), item_emb.to(dtype)
    row: dict[str, Any] = {"setting": s.name, "user_chunk": s.user_chunk or n_eval,
                           "item_chunk": s.item_chunk, "dtype": s.dtype, "note": s.note,
                           "block_mib": s.block_bytes(n_eval, ds.n_items) / MIB}

    def timed(kind: str, heldout: Any) -> float:
        t0 = time.perf_counter()
        m = evaluate(u, i, ds.train, heldout, ks, s.user_chunk or n_eval, s.item_chunk)
        row.update({f"{kind}_seconds": time.perf_counter() - t0,
                    f"{kind}_users": int(m["n_users"]), f"{kind}_recall@20": m["recall@20"]})
        return row[f"{kind}_seconds"] / max(int(m["n_users"]), 1)

    before = rss_mib()
    reset_peak()
    try:
        if s.user_chunk == 0:
            timed("all", ds.test)
        else:
            row["seconds_extrapolated"] = timed("sample", _heldout_rows(ds.test, sample)) * n_eval
            if len(sample) >= n_eval:  # the sample was every test user
                row["all_seconds"] = row["sample_seconds"]
            elif row["seconds_extrapolated"] <= cap:
                timed("all", ds.test)
        row["outcome"] = "ok"
    except (MemoryError, RuntimeError) as e:
        if not out_of_memory(e):
            raise
        row.update(outcome="out of memory", error=str(e).splitlines()[0][:300])
    row["seconds"] = row.get("all_seconds", row.get("seconds_extrapolated"))
    row["extrapolated"] = "all_seconds" not in row and row["outcome"] == "ok"
    row["peak_rss_mib"] = peak_rss_mib()
    row["peak_delta_mib"] = row["peak_rss_mib"] - before
    return row


def phase_eval(args: dict[str, Any]) -> dict[str, Any]:
    """Every evaluation setting on the untrained LightGCN's embeddings (ranking cost does
    not depend on the weights), each with its own peak RSS."""
    import torch

    from lmmrec.data.dataset import PreparedDataset
    from lmmrec.train.trainer import build_model

    baseline = mark_baseline()
    data = Path(args["data"])
    cfg = _train_config(data, BASE, None)
    ds = PreparedDataset.load(data)
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg, ds)
    model.eval()
    t0 = time.perf_counter()
    with torch.no_grad():
        user_emb, item_emb = model(None)  # what evaluate_model scores
    propagate_s = time.perf_counter() - t0
    _ = ds.train, ds.test  # built once, outside every setting's timing
    n_per_user = np.diff(ds.test.indptr)
    eval_users = np.flatnonzero(n_per_user > 0)
    rng = np.random.default_rng(args.get("seed", 0))
    k = min(args["eval_users"], len(eval_users))
    sample = np.sort(rng.choice(eval_users, k, replace=False))
    wanted = set(args.get("settings") or [s.name for s in SETTINGS])
    rows = []
    for s in SETTINGS:
        if s.name not in wanted:
            continue
        if s.item_chunk is not None and s.item_chunk >= ds.n_items:
            rows.append({"setting": s.name, "outcome": "same as default",
                         "note": f"{ds.n_items} items <= item_chunk {s.item_chunk}"})
            continue
        rows.append(_run_setting(s, user_emb, item_emb, ds, sample, len(eval_users),
                                 list(cfg.eval.ks), args["eval_cap"]))
    return {"propagate_s": propagate_s, "baseline_rss_mib": baseline,
            "n_eval_users": int(len(eval_users)),
            "sample_users": int(k), "n_items": ds.n_items, "settings": rows}


def phase_artifact(args: dict[str, Any]) -> dict[str, Any]:
    return write_synthetic_artifact(Path(args["data"]), Path(args["out"]),
                                    args["review_share"])


PHASES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "generate": phase_generate, "prepare": phase_prepare, "artifact": phase_artifact,
    "train": phase_train, "eval": phase_eval}


Runner = Callable[[str, dict[str, Any], int], dict[str, Any]]


def run_phase(phase: str, args: dict[str, Any]) -> dict[str, Any]:
    """One phase; running out of memory (past the guard) is a result, not a crash."""
    try:
        out = PHASES[phase](args)
    except (MemoryError, RuntimeError) as e:
        if not out_of_memory(e):
            raise
        out = {"error": str(e).splitlines()[0][:300], "outcome": "out of memory",
               "baseline_rss_mib": BASELINE.get("mib")}
    out.setdefault("outcome", "ok")
    out.setdefault("peak_rss_mib", peak_rss_mib())
    return out


def child(phase: str, args: dict[str, Any], guard: int) -> dict[str, Any]:
    """Run one phase in a fresh interpreter under an address-space guard of `guard` bytes
    (so its ru_maxrss is its own); its JSON result, wall time and guard added."""
    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, str(Path(__file__).resolve()), "_child", phase,
                        json.dumps({**args, "guard": guard})], capture_output=True, text=True,
                       env=env)
    if r.returncode != 0:
        raise RuntimeError(f"{phase} failed ({r.returncode}): {r.stderr[-3000:]}")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    out.update(wall_s=time.perf_counter() - t0, guard_gib=guard / GIB)
    return out


def in_process(phase: str, args: dict[str, Any], guard: int) -> dict[str, Any]:
    """The same phases in this process, without the guard (for tests)."""
    t0 = time.perf_counter()
    out = run_phase(phase, args)
    out.update(wall_s=time.perf_counter() - t0, guard_gib=None)
    return out


# -- one size --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    warmup: int = 8
    steps: int = 16
    epoch_cap: float = 120.0
    eval_users: int = 4096
    eval_cap: float = 60.0
    review_share: float = 0.1
    guard_gib: float = 20.0
    methods: tuple[str, ...] = (BASE, LMMREC, LMMREC_LEAN)


def ok(part: dict[str, Any] | None) -> bool:
    return bool(part) and part.get("outcome", "ok") == "ok"


def _said(name: str, what: str, part: dict[str, Any], value: str) -> None:
    why = f": {part['error']}" if part.get("error") else f" ({part.get('note', '')})"
    say(f"{name}: {what} " + (value if ok(part) else part["outcome"] + why))


def measure(name: str, data: Path, work: Path, opts: Options, run: Runner) -> dict[str, Any]:
    """Training (each method) and evaluation of one prepared dataset."""
    res: dict[str, Any] = {"methods": list(opts.methods)}
    art = work / "motivations"
    if any(m != BASE for m in opts.methods):
        res["artifact"] = run("artifact", {"data": str(data), "out": str(art),
                                           "review_share": opts.review_share},
                              guard_limit(opts.guard_gib))
    for method in opts.methods:
        t = res[method] = run("train", {
            "data": str(data), "method": method, "run": str(work / f"run-{method}"),
            "motivations": str(art) if method != BASE else None, "warmup": opts.warmup,
            "steps": opts.steps, "epoch_cap": opts.epoch_cap}, guard_limit(opts.guard_gib))
        _said(name, method, t, f"{t.get('epoch_s', 0):.1f} s/epoch"
              f"{' (extrapolated)' if t.get('extrapolated') else ''}, peak "
              f"{t['peak_rss_mib']:.0f} MiB")
    ev = res["eval"] = run("eval", {"data": str(data), "eval_users": opts.eval_users,
                                    "eval_cap": opts.eval_cap}, guard_limit(opts.guard_gib))
    for s in ev.get("settings", []):
        _said(name, f"eval {s['setting']}", s, f"{s.get('seconds') or 0:.1f} s, peak "
              f"{s.get('peak_rss_mib', 0):.0f} MiB")
    return res


def run_synthetic(n: int, opts: Options, run: Runner = child, runs: Path = RUNS,
                  seed: int = 0) -> dict[str, Any]:
    """Generate, prepare, train and evaluate the synthetic graph of `n` interactions."""
    spec = GraphSpec(n, seed=seed)
    work = runs / f"n{n}"
    table = work / "interactions.parquet"
    res: dict[str, Any] = {"name": f"synthetic 10^{math.log10(n):.3g}", "n": n,
                           "spec": asdict(spec)}
    guard = guard_limit(opts.guard_gib)
    res["generate"] = run("generate", {"spec": asdict(spec), "table": str(table)}, guard)
    res["prepare"] = run("prepare", {"source": str(table), "out": str(work / "data"),
                                     "options": {"fmt": "table", "columns": TABLE_COLUMNS,
                                                 "kcore": 0, "split": "3:1:1"}}, guard)
    _said(res["name"], "prepare", res["prepare"], f"{res['prepare'].get('seconds', 0):.1f} s, "
          f"peak {res['prepare']['peak_rss_mib']:.0f} MiB")
    if ok(res["prepare"]):
        res.update(measure(res["name"], work / "data", work, opts, run))
    return res


def run_yelp(opts: Options, run: Runner = child, runs: Path = RUNS) -> dict[str, Any]:
    """The anchor: RLMRec's Yelp split, prepared as `lmmrec data prepare rlmrec-yelp`."""
    work = runs / "yelp"
    res: dict[str, Any] = {"name": "RLMRec Yelp (anchor)", "source": "rlmrec-yelp"}
    res["prepare"] = run("prepare", {"source": "rlmrec-yelp", "out": str(work / "data")},
                         guard_limit(opts.guard_gib))
    res["n"] = res["prepare"]["n_interactions"]
    _said(res["name"], "prepare", res["prepare"], f"{res['prepare']['seconds']:.1f} s")
    res.update(measure(res["name"], work / "data", work, opts, run))
    return res


# -- summary: rows, exponents, limits --------------------------------------------------------


def eval_row(r: dict[str, Any], name: str = "default") -> dict[str, Any] | None:
    """One evaluation setting's result at a size (None when it did not run through)."""
    ev = r.get("eval")
    if not ok(ev):
        return None
    row = next((s for s in ev["settings"] if s["setting"] == name), None)
    return row if ok(row) else None


def _above(part: dict[str, Any] | None, peak: float | None = None) -> float | None:
    """Peak RSS above the process's baseline (interpreter and imports): the part that
    grows with the data."""
    if not ok(part) or "baseline_rss_mib" not in part:
        return None
    return (peak if peak is not None else part["peak_rss_mib"]) - part["baseline_rss_mib"]


def _epoch(r: dict[str, Any], method: str, key: str = "epoch_s") -> float | None:
    t = r.get(method)
    return t[key] if ok(t) else None


def _eval_s(r: dict[str, Any], name: str = "default") -> float | None:
    row = eval_row(r, name)
    return r["eval"]["propagate_s"] + row["seconds"] if row else None


def _eval_rss(r: dict[str, Any], name: str = "default") -> float | None:
    row = eval_row(r, name)
    return _above(r["eval"], row["peak_rss_mib"]) if row else None


# key -> (label, value at a size); memory is fitted above each process's baseline, since a
# constant ~0.15-0.35 GiB of interpreter and imports would flatten the small sizes' slope
MEASURES: dict[str, tuple[str, Callable[[dict[str, Any]], float | None]]] = {
    "prepare_s": ("prepare (s)", lambda r: r["prepare"].get("seconds")),
    "lightgcn_step_s": ("LightGCN s/step (batch 4096)",
                        lambda r: _epoch(r, BASE, "step_s")),
    "lightgcn_epoch_s": ("LightGCN s/epoch", lambda r: _epoch(r, BASE)),
    "lmmrec_epoch_s": ("LMMRec s/epoch", lambda r: _epoch(r, LMMREC)),
    "lmmrec_lean_epoch_s": ("LMMRec s/epoch, teacher_refresh=step",
                            lambda r: _epoch(r, LMMREC_LEAN)),
    "eval_s": ("full evaluation (s), default chunks", _eval_s),
    "prepare_rss_mib": ("prepare peak RSS (MiB above baseline)",
                        lambda r: _above(r["prepare"])),
    "lightgcn_rss_mib": ("LightGCN training peak RSS (MiB above baseline)",
                         lambda r: _above(r.get(BASE))),
    "lmmrec_rss_mib": ("LMMRec training peak RSS (MiB above baseline)",
                       lambda r: _above(r.get(LMMREC))),
    "lmmrec_lean_rss_mib": ("LMMRec training peak RSS, teacher_refresh=step (MiB above "
                            "baseline)", lambda r: _above(r.get(LMMREC_LEAN))),
    "eval_rss_mib": ("evaluation peak RSS, default chunks (MiB above baseline)", _eval_rss),
    "eval_rss_user_chunks_mib": ("evaluation peak RSS, user_chunk 256 (MiB above baseline)",
                                 lambda r: _eval_rss(r, "user chunks")),
}
# the phase whose process baseline a memory measure sits on
BASELINE_OF = {"prepare_rss_mib": "prepare", "lightgcn_rss_mib": BASE,
               "lmmrec_rss_mib": LMMREC, "lmmrec_lean_rss_mib": LMMREC_LEAN,
               "eval_rss_mib": "eval", "eval_rss_user_chunks_mib": "eval"}


def exponents(sizes: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Each measure's power law over the synthetic sizes where it was measured."""
    out = {}
    for key, (_, get) in MEASURES.items():
        pts = [(r["n"], get(r)) for r in sizes]
        pts = [(x, y) for x, y in pts if y is not None and y > 0]
        if len(pts) >= 2 and len({x for x, _ in pts}) >= 2:
            out[key] = {**fit_power_law([x for x, _ in pts], [y for _, y in pts]),
                        "sizes": [x for x, _ in pts]}
    return out


def block_crossing(setting: EvalSetting, spec: GraphSpec, eval_share: float,
                   limit_bytes: float) -> float | None:
    """The N at which one score block of `setting` alone needs `limit_bytes` (None: it stops
    growing first, i.e. both chunks are fixed). `eval_share`: test users per user."""
    def need(n: float) -> float:
        g = GraphSpec(int(n), spec.users_per, spec.items_per)
        return setting.block_bytes(max(int(eval_share * g.n_users), 1), g.n_items)
    lo, hi = 1e3, 1e15
    if need(hi) < limit_bytes:
        return None
    for _ in range(100):  # bisection on log N
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if need(mid) < limit_bytes else (lo, mid)
    return hi


def limits(sizes: list[dict[str, Any]], fits: dict[str, dict[str, float]], ram_gib: float
           ) -> dict[str, Any]:
    """Where this machine's RAM runs out: each memory fit's crossing (baseline + fit = RAM),
    what ran out at any size, and each evaluation setting's score block against RAM."""
    ram_mib = ram_gib * 1024
    out: dict[str, Any] = {"ram_gib": ram_gib, "crossings": {}, "ran_out": [],
                           "block_crossings": {}}
    big = max(sizes, key=lambda r: r["n"])
    for key, phase in BASELINE_OF.items():
        part = next((r[phase] for r in sorted(sizes, key=lambda r: -r["n"])
                     if ok(r.get(phase))), None)  # the largest size it ran at
        if key in fits and part:
            x = crossing(fits[key], ram_mib - part["baseline_rss_mib"])
            out["crossings"][key] = {"n": x, "label": MEASURES[key][0]}
    for r in sizes:
        for phase in ("prepare", "artifact", *r.get("methods", ()), "eval"):
            part = r.get(phase)
            if part and not ok(part):
                out["ran_out"].append({"n": r["n"], "phase": phase, "error": part.get("error"),
                                       "guard_gib": part.get("guard_gib"),
                                       "peak_rss_mib": part.get("peak_rss_mib")})
        for st in (r.get("eval") or {}).get("settings", []):
            if st["outcome"] not in ("ok", "same as default"):
                out["ran_out"].append({"n": r["n"], "phase": f"eval {st['setting']}",
                                       "error": st.get("error"),
                                       "need_mib": st.get("block_mib"),
                                       "guard_gib": r["eval"].get("guard_gib")})
    ev = big.get("eval") or {}
    if ok(ev):
        share = ev["n_eval_users"] / big["prepare"]["n_users"]
        spec = GraphSpec(big["n"], **{k: v for k, v in big["spec"].items() if k != "n"})
        for st in SETTINGS:
            x = block_crossing(st, spec, share, ram_gib * GIB)
            out["block_crossings"][st.name] = x
        out["largest"] = {"n": big["n"], "settings": [
            {k: st.get(k) for k in ("setting", "outcome", "block_mib", "peak_rss_mib",
                                    "seconds", "extrapolated", "error", "note")}
            for st in ev["settings"]]}
    return out


# -- output ----------------------------------------------------------------------------------


def say(msg: str) -> None:
    print(msg, flush=True)


def _n(x: float | None) -> str:
    if x is None:
        return "-"
    if x < 1e5:
        return f"{x:,.0f}"
    e = int(math.floor(math.log10(x)))
    return f"{x / 10 ** e:.1f}e{e}"


def _s(x: float | None, extrapolated: bool = False) -> str:
    if x is None:
        return "-"
    v = f"{x:,.0f}" if x >= 100 else f"{x:.2f}" if x < 10 else f"{x:.1f}"
    return f"{v}*" if extrapolated else v


def _mib(part: dict[str, Any] | None) -> str:
    return f"{part['peak_rss_mib']:,.0f}" if part and "peak_rss_mib" in part else "-"


def _train_cell(t: dict[str, Any] | None) -> str:
    if not t:
        return "-"
    if not ok(t):
        return f"{t['outcome']} (guard {t.get('guard_gib') or 0:.1f} GiB)"
    return _s(t["epoch_s"], t["extrapolated"])


METHOD_LABELS = {BASE: "LightGCN", LMMREC: "LMMRec", LMMREC_LEAN: "LMMRec teacher_refresh=step"}


def _size_row(r: dict[str, Any], methods: Sequence[str]) -> str:
    p, ev = r["prepare"], eval_row(r)
    if not ok(p):
        return f"| {r['name']} | {p['outcome']} in prepare |" + " - |" * (7 + 2 * len(methods))
    cells = [r["name"], f"{p['n_interactions']:,}", f"{p['n_users']:,}", f"{p['n_items']:,}",
             _s(p["seconds"]), _mib(p)]
    for m in methods:
        cells += [_train_cell(r.get(m)), _mib(r.get(m))]
    cells += [_s(_eval_s(r), ev["extrapolated"]) if ev else "-", _mib(ev)]
    return "| " + " | ".join(cells) + " |"


def render(res: dict[str, Any]) -> str:
    rows = res["sizes"] + ([res["anchor"]] if res.get("anchor") else [])
    o = res["options"]
    methods = o["methods"]
    lines = [
        "# Growth: prepare, training and evaluation vs interactions", "",
        f"`{res['command']}`", "",
        f"Machine: {res['machine']}. **Shared machine**: other jobs (a local-LLM extraction "
        "among them) ran on the same cores and memory throughout (load average "
        f"{res['load_avg_start']:.2f} at the start, "
        f"{res['load_avg_end']:.2f} at the end; {res['total_wall_s'] / 60:.0f} min in all), "
        "so absolute seconds are inflated and noisy; the exponents are the result to read. "
        f"torch with OMP_NUM_THREADS={res['omp_threads']}.", "",
        "Synthetic graph (seeded, `GraphSpec` in the script): N distinct (user, item) pairs, "
        f"N/{res['spec']['users_per']} users and N/{res['spec']['items_per']} items, each "
        f"with at least one interaction; user activity Zipf rank^-"
        f"{res['spec']['user_exponent']}, item popularity Zipf rank^-"
        f"{res['spec']['item_exponent']}; string ids in a Parquet table, prepared with "
        "`--format table --kcore 0 --split 3:1:1` (seed 2024). LightGCN: the shipped preset "
        "(dim 32, 3 layers, batch 4096). LMMRec: the shipped settings (align.every=8, "
        "align.teacher_refresh=epoch), and again with align.teacher_refresh=step, on a "
        f"synthetic artifact: {o['review_share']:.0%} of the interactions have a review with "
        f"2-5 phrases drawn from a vocabulary of N/100, random unit {TEXT_DIM}-d vectors.", "",
        "| graph | interactions | users | items | prepare (s) | prepare peak (MiB) | "
        + "".join(f"{METHOD_LABELS.get(m, m)} s/epoch | {METHOD_LABELS.get(m, m)} peak "
                  "(MiB) | " for m in methods) + "full eval (s) | eval peak (MiB) |",
        "|---|" + "---:|" * (7 + 2 * len(methods)),
        *[_size_row(r, methods) for r in rows],
        "", f"\\* extrapolated. Training: the mean of {o['steps']} steps after {o['warmup']} "
        "warm-up steps times the steps per epoch (training interactions / batch 4096), plus "
        "the epoch's negative sampling and, for LMMRec, its once-an-epoch EMA teacher "
        "refresh; an epoch is measured whole when that estimate is under "
        f"{o['epoch_cap']:.0f} s. Evaluation: the real evaluator on a seeded subsample of "
        f"{o['eval_users']} test users, scaled linearly to all test users, plus the model's "
        "propagation; every test user is ranked when the estimate is under "
        f"{o['eval_cap']:.0f} s. Peak RSS: ru_maxrss of each phase's own fresh process "
        "(evaluation: its default setting).", ""]
    lines += _check_lines(rows)
    lines += ["## Growth exponents", "",
              "Least squares on log10-log10 over the synthetic sizes (Yelp not in the fit). "
              "Memory is fitted above each process's baseline (interpreter and imports, "
              "measured before any data is read).", "",
              "| measure | exponent | R² | fitted on N = | fit at N = 10^8 |",
              "|---|---:|---:|---|---:|"]
    for key, f in res["exponents"].items():
        at = f["coefficient"] * 1e8 ** f["exponent"]
        unit = "MiB" if key.endswith("mib") else "s"
        lines.append(f"| {MEASURES[key][0]} | {f['exponent']:.2f} | {f['r2']:.3f} | "
                     f"{' / '.join(_n(x) for x in f['sizes'])} | {at:,.0f} {unit} |")
    lines += ["", *_limit_lines(res), "", *_eval_lines(rows), "",
              "Raw numbers (per-step times, set-up, sampling, teacher refresh, the text "
              "side's coverage, every guard): `growth.json`. Plot: `growth.png`.", ""]
    return "\n".join(lines)


def _check_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Extrapolation against measurement where both exist."""
    out = []
    for r in rows:
        for m in r.get("methods", ()):
            t = r.get(m)
            if ok(t) and t["epoch_s_measured"]:
                out.append(f"{r['name']} {METHOD_LABELS.get(m, m)}: whole epoch "
                           f"{t['epoch_s_measured']:.2f} s, extrapolated "
                           f"{t['epoch_s_extrapolated']:.2f} s")
        ev = eval_row(r)
        if ev and "all_seconds" in ev and "seconds_extrapolated" in ev \
                and ev["sample_users"] < r["eval"]["n_eval_users"]:
            out.append(f"{r['name']} evaluation: all test users {ev['all_seconds']:.2f} s, "
                       f"extrapolated {ev['seconds_extrapolated']:.2f} s")
    if not out:
        return []
    return ["The extrapolation against whole runs, where both were made:", "",
            *[f"- {x}" for x in out], ""]


def _limit_lines(res: dict[str, Any]) -> list[str]:
    lim = res["limits"]
    ram = lim["ram_gib"]
    lines = ["## Where it runs out", "",
             f"This machine has {ram:.1f} GiB of RAM and no swap. Every child ran under an "
             "address-space guard (RLIMIT_AS, at most 3 GiB under what was available when it "
             f"started; {res['guard_gib']:.1f} GiB at the start), so an allocation past it "
             "failed at once instead of pushing the shared machine into the OOM killer. "
             "*Ran out* below means past that guard, i.e. past what this shared machine had "
             "free, not past its RAM (and address space, which torch and the allocator map "
             "beyond what they touch, is more than RSS).", ""]
    for x in lim["ran_out"]:
        need = f"; one score block needs {x['need_mib'] / 1024:,.1f} GiB" \
            if x.get("need_mib") else ""
        peak = f", peak RSS {x['peak_rss_mib']:,.0f} MiB when it failed" \
            if x.get("peak_rss_mib") and not x.get("need_mib") else ""
        lines.append(f"- **Ran out** at N = {_n(x['n'])}: {METHOD_LABELS.get(x['phase'], x['phase'])}"
                     f" (guard {x.get('guard_gib') or 0:.1f} GiB{need}{peak}): "
                     f"`{x.get('error')}`")
    lines += ["", f"Each memory fit (baseline + c·N^b) reaches {ram:.1f} GiB at:", ""]
    for c in lim["crossings"].values():
        lines.append(f"- {c['label']}: N ≈ {_n(c['n'])} interactions" if c["n"]
                     else f"- {c['label']}: not before N = 10^30 (flat or shrinking fit)")
    big = lim.get("largest")
    if big:
        lines += ["", f"Evaluation settings at N = {_n(big['n'])}, and the N at which one "
                  f"score block alone would need {ram:.1f} GiB:", ""]
        for st in big["settings"]:
            x = lim["block_crossings"].get(st["setting"])
            cross = f"needs the RAM at N ≈ {_n(x)}" if x else "never grows (fixed size)"
            if st["outcome"] == "same as default":
                continue
            msg = (f"{_s(st['seconds'], bool(st['extrapolated']))} s, peak "
                   f"{st['peak_rss_mib']:,.0f} MiB" if st["outcome"] == "ok"
                   else f"**{st['outcome']}**")
            lines.append(f"- {st['setting']} ({st['note']}): block "
                         f"{st['block_mib']:,.0f} MiB: {msg}; the block {cross}")
    lines += ["", *res.get("limit_notes", [])]
    return lines


def _eval_lines(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["## Evaluation settings at every size", "",
             "recall@20 is that of the untrained LightGCN's embeddings on the sample: not a "
             "quality number, a check that the settings rank alike.", "",
             "| graph | setting | score block (MiB) | outcome | seconds | peak RSS (MiB) | "
             "recall@20 (sample) |", "|---|---|---:|---|---:|---:|---:|"]
    for r in rows:
        for st in (r.get("eval") or {}).get("settings", []):
            if st["outcome"] == "same as default":
                continue
            good = st["outcome"] == "ok"
            rec = st.get("sample_recall@20", st.get("all_recall@20"))
            secs = _s(st["seconds"], st["extrapolated"]) if good else "-"
            lines.append(f"| {r['name']} | {st['setting']} | {st['block_mib']:,.1f} | "
                         f"{st['outcome']} | {secs} | {st['peak_rss_mib']:,.0f} | "
                         f"{f'{rec:.3g}' if rec is not None else '-'} |")
    return lines


# one colour per phase in both panels
COLORS = {"prepare_s": "C0", "prepare_rss_mib": "C0", "lightgcn_step_s": "C7",
          "lightgcn_epoch_s": "C1", "lightgcn_rss_mib": "C1", "lmmrec_epoch_s": "C2",
          "lmmrec_rss_mib": "C2", "lmmrec_lean_epoch_s": "C3", "lmmrec_lean_rss_mib": "C3",
          "eval_s": "C4", "eval_rss_mib": "C4", "eval_rss_user_chunks_mib": "C5"}
EPOCH_OF = {"lightgcn_epoch_s": BASE, "lmmrec_epoch_s": LMMREC,
            "lmmrec_lean_epoch_s": LMMREC_LEAN}


def _hollow(r: dict[str, Any], key: str) -> bool:
    """Whether a point is extrapolated (drawn hollow)."""
    if key in EPOCH_OF:
        t = r.get(EPOCH_OF[key])
        return bool(ok(t) and t["extrapolated"])
    if key == "eval_s":
        row = eval_row(r)
        return bool(row and row["extrapolated"])
    return False


def plot(res: dict[str, Any]) -> bytes:
    """Log-log: seconds (left) and peak RSS above baseline (right) against interactions;
    fitted lines dashed, extrapolated points hollow, Yelp as a star."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 7.5))
    groups = (("s", [k for k in MEASURES if k.endswith("_s")]),
              ("MiB", [k for k in MEASURES if k.endswith("_mib")]))
    ns = [r["n"] for r in res["sizes"]]
    xs_fit = np.logspace(np.log10(min(ns)) - 0.2, np.log10(max(ns)) + 0.3, 50)
    for ax, (unit, keys) in zip(axes, groups, strict=True):
        for key in keys:
            label, get = MEASURES[key]
            color = COLORS[key]
            for r in res["sizes"]:
                y = get(r)
                if y is not None and y > 0:
                    ax.loglog(r["n"], y, "o", color=color,
                              mfc="none" if _hollow(r, key) else color)
            a = res.get("anchor")
            if a and get(a) is not None and get(a) > 0:
                ax.loglog(a["n"], get(a), "*", color=color, ms=13,
                          mfc="none" if _hollow(a, key) else color)
            phase = BASELINE_OF.get(key)
            for r in res["sizes"]:  # ran out: the peak when it failed, a lower bound
                part = r.get(phase) if phase else None
                if part and not ok(part) and part.get("baseline_rss_mib"):
                    ax.loglog(r["n"], part["peak_rss_mib"] - part["baseline_rss_mib"], "x",
                              color=color, ms=10, mew=2)
            f = res["exponents"].get(key)
            if f:
                ax.loglog(xs_fit, f["coefficient"] * xs_fit ** f["exponent"], "--",
                          color=color, label=f"{label}: N^{f['exponent']:.2f}")
        if unit == "MiB":
            ram = res["limits"]["ram_gib"] * 1024
            ax.axhline(ram, color="k", lw=1)
            ax.text(xs_fit[0], ram * 1.1, f"RAM {res['limits']['ram_gib']:.1f} GiB", fontsize=8)
        ax.set_xlabel("interactions N")
        ax.set_ylabel("seconds" if unit == "s" else "peak RSS above baseline (MiB)")
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    fig.suptitle("lmmrec growth on synthetic power-law graphs (dots; star: RLMRec Yelp; "
                 "hollow: extrapolated; x: ran out, peak when it failed; dashed: fit). "
                 "Shared 2-core machine.", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def write_results(res: dict[str, Any], folder: Path) -> None:
    from lmmrec.io import atomic_write_bytes, atomic_write_json, atomic_write_text

    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(folder / "growth.json", res)
    atomic_write_text(folder / "growth.md", render(res))
    atomic_write_bytes(folder / "growth.png", plot(res))


def limit_notes(res: dict[str, Any]) -> list[str]:
    """What drives each limit and what gets past it, computed from this run's largest size."""
    big = max(res["sizes"], key=lambda r: r["n"])
    p, fits = big["prepare"], res["exponents"]
    if not ok(p):
        return []
    at = f"N = {_n(big['n'])}"
    per_row = _above(p) * MIB / big["n"]
    notes = [f"- Prepare keeps ~{per_row:,.0f} bytes per interaction at its peak "
             f"({_above(p) / 1024:.1f} GiB above baseline at {at}): the table reader holds "
             "every row as Python objects; no `data prepare` option lowers it."]
    n_nodes = p["n_users"] + p["n_items"]
    edges = 2 * p["n_train"]
    notes.append(f"- Sparse ops: at {at} a dense (users+items)² float32 adjacency would take "
                 f"{n_nodes ** 2 * 4 / GIB:,.0f} GiB; the CSR graph LightGCN propagates over "
                 f"takes {edges * 20 / GIB:.2f} GiB (20 bytes per stored edge, {edges:,} "
                 "edges). Memory is not what stops LightGCN training here, time is:")
    if "lightgcn_step_s" in fits and "lightgcn_epoch_s" in fits:
        notes.append(f"  every step propagates the whole graph, so s/step grows as "
                     f"N^{fits['lightgcn_step_s']['exponent']:.2f} and, with N/4096 steps, "
                     f"s/epoch as N^{fits['lightgcn_epoch_s']['exponent']:.2f} "
                     f"({_s(_epoch(big, BASE))} s per epoch at {at} on this shared machine).")
    lm = big.get(LMMREC)
    hidden = next((r[m]["text_hidden"] for r in res["sizes"] for m in (LMMREC, LMMREC_LEAN)
                   if ok(r.get(m))), None)
    if lm is not None and hidden:
        refresh = n_nodes * hidden * 4
        failed = not ok(lm) and str(refresh) in (lm.get("error") or "")
        chunk = min(n_nodes, CHUNK_ROWS)
        notes.append(
            f"- LMMRec's once-an-epoch teacher refresh (align.teacher_refresh=epoch, the "
            f"default) runs the teacher text encoder over every user and item, "
            f"{CHUNK_ROWS:,} rows at a time: a [{chunk:,} x {hidden}] float32 hidden layer "
            f"per chunk ({chunk * hidden * 4 / MIB:,.0f} MiB; all {n_nodes:,} at once would be "
            f"{refresh:,} bytes"
            + (", exactly the allocation that failed" if failed else "")
            + ")"
            + (f"; peak {lm['peak_rss_mib']:,.0f} MiB at {at}" if ok(lm) else "")
            + ". align.teacher_refresh=step runs the teacher on each aligned step's sampled "
            "rows instead"
            + (f": {_s(_epoch(big, LMMREC_LEAN))} s per epoch, peak "
               f"{big[LMMREC_LEAN]['peak_rss_mib']:,.0f} MiB at {at}."
               if ok(big.get(LMMREC_LEAN)) else "."))
        share = res["options"]["review_share"]
        notes.append(
            f"- LMMRec's text side keeps a pooled {TEXT_DIM}-d float32 vector per user and "
            f"item ({n_nodes * TEXT_DIM * 4 / GIB:.1f} GiB at {at}) and two per training "
            f"review with phrases ({share:.0%} of reviews here); motivations for all "
            f"{p['n_train']:,} training reviews would add "
            f"~{p['n_train'] * (1 - share) * 2 * TEXT_DIM * 4 / GIB:.1f} GiB.")
    return notes


# -- main ------------------------------------------------------------------------------------


def machine() -> str:
    return (f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
            f"{meminfo_gib('MemTotal'):.1f} GiB RAM, Python {platform.python_version()}")


def collect(sizes: Sequence[int], opts: Options, yelp: bool = True, run: Runner = child,
            runs: Path = RUNS, command: str = "") -> dict[str, Any]:
    """Every size (and the anchor), then the fits and the limits: the results' content."""
    res: dict[str, Any] = {
        "benchmark": "growth with interactions (issue 22, point 1)", "command": command,
        "machine": machine(), "shared_machine": True, "load_avg_start": os.getloadavg()[0],
        "mem_available_gib_start": meminfo_gib("MemAvailable"),
        "omp_threads": os.environ.get("OMP_NUM_THREADS", "default"),
        "options": asdict(opts), "spec": {k: v for k, v in asdict(GraphSpec(1)).items()
                                          if k != "n"},
        "ram_gib": meminfo_gib("MemTotal"), "guard_gib": guard_limit(opts.guard_gib) / GIB,
        "sizes": []}
    t0 = time.perf_counter()
    for n in sizes:
        res["sizes"].append(run_synthetic(n, opts, run, runs))
    res["anchor"] = run_yelp(opts, run, runs) if yelp else None
    res["load_avg_end"] = os.getloadavg()[0]
    res["total_wall_s"] = time.perf_counter() - t0
    return summarise(res)


def summarise(res: dict[str, Any]) -> dict[str, Any]:
    """The fits, limits and notes of a run's measurements (again, for --from-json)."""
    res["exponents"] = exponents(res["sizes"])
    ram = res.get("ram_gib") or res["limits"]["ram_gib"]
    res["limits"] = limits(res["sizes"], res["exponents"], ram)
    res["limit_notes"] = limit_notes(res)
    return res


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1e5,1e6,1e7", help="interactions, comma-separated")
    ap.add_argument("--no-yelp", action="store_true", help="leave out the Yelp anchor")
    ap.add_argument("--warmup", type=int, default=8, help="untimed training steps")
    ap.add_argument("--steps", type=int, default=16, help="timed training steps")
    ap.add_argument("--eval-users", type=int, default=4096, help="evaluation subsample")
    ap.add_argument("--epoch-cap", type=float, default=120.0,
                    help="measure a whole epoch when the estimate is under this (s)")
    ap.add_argument("--eval-cap", type=float, default=60.0,
                    help="evaluate every test user when the estimate is under this (s)")
    ap.add_argument("--review-share", type=float, default=0.1,
                    help="share of interactions with synthetic motivations")
    ap.add_argument("--guard-gib", type=float, default=20.0,
                    help="address-space cap of each child (kept 3 GiB under MemAvailable)")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--from-json", type=Path, metavar="GROWTH_JSON",
                    help="measure nothing: fit and write the tables and plot again from a "
                         "run's growth.json")
    args = ap.parse_args(argv)
    if args.from_json:
        res = summarise(json.loads(args.from_json.read_text()))
        write_results(res, args.results)
        say(render(res))
        return res
    opts = Options(args.warmup, args.steps, args.epoch_cap, args.eval_users, args.eval_cap,
                   args.review_share, args.guard_gib)
    given = argv if argv is not None else sys.argv[1:]
    command = " ".join(["python benchmarks/bench_growth.py", *given])
    res = collect([int(float(x)) for x in args.sizes.split(",")], opts, not args.no_yelp,
                  command=command)
    write_results(res, args.results)
    say(render(res))
    return res


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        phase_args = json.loads(sys.argv[3])
        set_guard(phase_args["guard"])
        print(json.dumps(run_phase(sys.argv[2], phase_args), default=float))
    else:
        main()

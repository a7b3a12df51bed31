"""Training speed on a quiet and on a busy machine, by intra-op thread count and OpenMP wait
policy: which default stays fast when other jobs share the cores.

    python benchmarks/bench_threads.py [--epochs 3] [--load 2] [--load-kind torch|spin]

Each setting trains LightGCN (RLMRec's settings, RLMRec's Amazon split) for ``--epochs``
epochs in a fresh process (OpenMP reads its wait policy when it loads) and records its mean
seconds per epoch. "busy" runs ``--load`` competing processes for the whole measurement:
``torch`` (each a small training-like loop on every core, its OpenMP threads spinning as
torch's do by default: another training, an LLM) or ``spin`` (one busy core each).
Settings: train.threads 1 and 2 (= all cores here), each with OMP_WAIT_POLICY ACTIVE
(waiting threads spin) and PASSIVE (they sleep), and the default: nothing set, what a user
of `lmmrec train` gets. Goal: on the busy machine the default within 2x of the best setting,
on the quiet one within 1.25x. Stop other work first: the quiet rows must be quiet. Writes
results/threads-KIND.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = Path(os.environ.get("LMMREC_DATA_DIR") or REPO.parent / "shared" / "data")
GOAL_BUSY, GOAL_QUIET = 2.0, 1.25
# (train.threads, OMP_WAIT_POLICY); "default": left unset, as a user who sets nothing runs
SETTINGS = [("default", "default"), ("1", "ACTIVE"), ("1", "PASSIVE"), ("2", "ACTIVE"),
            ("2", "PASSIVE")]


# A competing training: small matmuls on every core, OpenMP threads spinning between ops
# (libgomp's default), as another torch job or an OpenMP LLM runtime does.
TORCH_LOAD = """
import torch
torch.set_num_threads({threads})
a = torch.randn(256, 256)
while True:
    a = torch.tanh(a @ a)
"""


def competitors(kind: str, n: int) -> list[subprocess.Popen]:
    """``n`` competing processes: ``spin`` (one busy core each) or ``torch`` (each using
    every core, as another training does)."""
    code = ("while True: pass" if kind == "spin"
            else TORCH_LOAD.format(threads=os.cpu_count() or 2))
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    return [subprocess.Popen([sys.executable, "-c", code], env=env) for _ in range(n)]


def prepared(name: str) -> Path:
    from lmmrec.train.rlmrec_splits import prepared_copy

    split = name.removeprefix("rlmrec-")
    return prepared_copy(DATA / "rlmrec-splits" / split, REPO / "runs" / "bench" / "data" / split)


def one_run(data: Path, threads: str, wait: str, epochs: int) -> float:
    """Mean seconds per epoch of a fresh `lmmrec train` with these settings."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    if wait != "default":
        env["OMP_WAIT_POLICY"] = wait
    sets = [f"train.max_epochs={epochs}", f"train.eval_every={epochs}", "train.progress=false",
            "eval.user_chunk=4096"]
    if threads != "default":
        sets.append(f"train.threads={threads}")
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "lmmrec", "train", "--backbone", "lightgcn", "--data",
               str(data), "--out", out, "--overwrite"]
        for s in sets:
            cmd += ["--set", s]
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
        metrics = json.loads((Path(out) / "metrics.json").read_text(encoding="utf-8"))
    return float(metrics["seconds_per_epoch"])


def measure(data: Path, epochs: int, load: int, kind: str) -> list[dict]:
    rows = []
    for machine in ("quiet", "busy"):
        spinners = competitors(kind, load if machine == "busy" else 0)
        try:
            for threads, wait in SETTINGS:
                s = one_run(data, threads, wait, epochs)
                rows.append({"machine": machine, "threads": threads, "wait_policy": wait,
                             "seconds_per_epoch": round(s, 3)})
                print(rows[-1], flush=True)
        finally:
            for p in spinners:
                p.kill()
                p.wait()
    return rows


def render(res: dict) -> str:
    lines = ["# Training speed on a quiet and a busy machine", "",
             f"Made by `python benchmarks/bench_threads.py --epochs {res['epochs']} --load "
             f"{res['load']} --load-kind {res['load_kind']} --dataset {res['dataset']}` on "
             f"{res['machine']}: LightGCN, mean seconds per epoch; busy = {res['load']} "
             f"competing processes of kind `{res['load_kind']}` (see the script). "
             "`default` is what a user gets without setting anything.", "",
             "| machine | train.threads | OMP_WAIT_POLICY | s/epoch | x best on this machine |",
             "|---|---|---|---|---|"]
    for r in res["rows"]:
        lines.append(f"| {r['machine']} | {r['threads']} | {r['wait_policy']} | "
                     f"{r['seconds_per_epoch']} | {r['x_best']} |")
    lines += ["", f"Default (both unset) vs the best setting: quiet {res['default_x_best']['quiet']}x "
              f"(goal <= {GOAL_QUIET}), busy {res['default_x_best']['busy']}x (goal <= {GOAL_BUSY})."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--load", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--dataset", default="rlmrec-amazon")
    ap.add_argument("--load-kind", choices=["spin", "torch"], default="torch")
    a = ap.parse_args()
    rows = measure(prepared(a.dataset), a.epochs, a.load, a.load_kind)
    for machine in ("quiet", "busy"):
        mine = [r for r in rows if r["machine"] == machine]
        best = min(r["seconds_per_epoch"] for r in mine)
        for r in mine:
            r["x_best"] = round(r["seconds_per_epoch"] / best, 2)
    default = {m: next(r["x_best"] for r in rows if r["machine"] == m
                       and r["threads"] == "default" and r["wait_policy"] == "default")
               for m in ("quiet", "busy")}
    res = {"machine": f"{platform.machine()}, {os.cpu_count()} cpus", "epochs": a.epochs,
           "load": a.load, "load_kind": a.load_kind, "dataset": a.dataset, "rows": rows, "default_x_best": default,
           "goal_met": default["busy"] <= GOAL_BUSY and default["quiet"] <= GOAL_QUIET}
    name = f"threads-{a.load_kind}"
    (HERE / "results" / f"{name}.json").write_text(json.dumps(res, indent=2) + "\n")
    (HERE / "results" / f"{name}.md").write_text(render(res))
    print(render(res))


if __name__ == "__main__":
    main()

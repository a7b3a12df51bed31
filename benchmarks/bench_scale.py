"""Scale-out benchmark on RLMRec's Yelp split (11,091 users x 11,010 items).

  eval memory: peak RSS of one full test evaluation, whole catalogue vs eval.item_chunk,
               each in a fresh process (ru_maxrss after loading minus before evaluating)
  ddp speed:   seconds per LightGCN epoch with 1 and 2 processes (gloo, CPU), same global
               batch (train.batch_size 4096: 2048 per rank with 2)

    python benchmarks/bench_scale.py [--epochs 3] [--item-chunk 1024]

Writes benchmarks/results/scale.json and scale.md. Runs live in runs/bench/scale/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(os.environ.get("LMMREC_BENCH_RESULTS") or REPO / "benchmarks" / "results")
RUNS = Path(os.environ.get("LMMREC_BENCH_RUNS") or REPO / "runs" / "bench") / "scale"
DATA = Path(os.environ.get("LMMREC_DATA_DIR") or REPO.parent / "shared" / "data")

EVAL_CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
from lmmrec.data.dataset import PreparedDataset
from lmmrec.eval.ranking import evaluate
data, user_chunk, item_chunk = sys.argv[1], int(sys.argv[2]), sys.argv[3]
item_chunk = None if item_chunk == "none" else int(item_chunk)
ds = PreparedDataset.load(data)
g = torch.Generator().manual_seed(0)
user = torch.randn(ds.n_users, 32, generator=g)
item = torch.randn(ds.n_items, 32, generator=g)
kib = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
before = kib()
t0 = time.perf_counter()
out = evaluate(user, item, ds.train, ds.test, [5, 10, 20], user_chunk, item_chunk)
print(json.dumps({"seconds": time.perf_counter() - t0, "peak_rss_mib": kib() / 1024,
                  "peak_delta_mib": (kib() - before) / 1024, "recall@20": out["recall@20"],
                  "n_users": ds.n_users, "n_items": ds.n_items}))
"""


def prepared(name: str) -> Path:
    """A prepared copy of rlmrec-splits/<name> (made once, under runs/bench/data)."""
    from lmmrec.train.rlmrec_splits import prepared_copy

    return prepared_copy(DATA / "rlmrec-splits" / name, RUNS / "data" / name)


def eval_memory(data: Path, user_chunk: int, item_chunk: int | None) -> dict:
    r = subprocess.run([sys.executable, "-c", EVAL_CHILD, str(data), str(user_chunk),
                        str(item_chunk or "none")], capture_output=True, text=True, check=True)
    out = json.loads(r.stdout.strip().splitlines()[-1])
    return {"user_chunk": user_chunk, "item_chunk": item_chunk, **out}


def epoch_time(data: Path, nproc: int, epochs: int, threads: int | None = None) -> dict:
    out = RUNS / (f"lightgcn-yelp-np{nproc}" + (f"-t{threads}" if threads else ""))
    cmd = [sys.executable, "-m", "lmmrec", "train", "--backbone", "lightgcn", "--data",
           str(data), "--out", str(out), "--nproc", str(nproc),
           "--set", f"train.max_epochs={epochs}", "--set", f"train.eval_every={epochs}",
           "--set", "train.batch_size=4096", "--set", "train.progress=false",
           "--set", "train.device=cpu"] + (["--set", f"train.threads={threads}"]
                                              if threads else [])
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    m = json.loads((out / "metrics.json").read_text())
    log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    secs = [x["seconds"] for x in log if "loss" in x]
    return {"nproc": nproc, "threads_per_process": threads or (1 if nproc > 1 else "default"),
            "epochs": epochs, "global_batch": 4096,
            "local_batch": 4096 // nproc, "seconds_per_epoch": m["seconds_per_epoch"],
            "epoch_seconds": secs, "wall_seconds": wall,
            "test_recall@20": m["test"]["recall@20"]}


def render(res: dict) -> str:
    lines = ["# Scale-out benchmark", "", f"Machine: {res['machine']}", "",
             "## Full evaluation, peak memory (fresh process each)", "",
             "| user_chunk | item_chunk | peak RSS delta (MiB) | peak RSS (MiB) | seconds |",
             "|---:|---:|---:|---:|---:|"]
    for r in res["eval_memory"]:
        lines.append(f"| {r['user_chunk']} | {r['item_chunk'] or 'all'} | "
                     f"{r['peak_delta_mib']:.0f} | {r['peak_rss_mib']:.0f} | "
                     f"{r['seconds']:.2f} |")
    lines += ["", "## LightGCN epoch time, 1 vs 2 processes (gloo, CPU, global batch 4096)",
              "", "| processes | threads each | local batch | s / epoch | epochs | test R@20 |",
              "|---:|---:|---:|---:|---:|---:|"]
    for r in res["ddp"]:
        lines.append(f"| {r['nproc']} | {r['threads_per_process']} | {r['local_batch']} | {r['seconds_per_epoch']:.2f} | "
                     f"{r['epochs']} | {r['test_recall@20']:.4f} |")
    lines += ["", res.get("note", ""), ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--item-chunk", type=int, default=1024)
    ap.add_argument("--skip-ddp", action="store_true")
    args = ap.parse_args()
    data = prepared("yelp")
    n_users = json.loads((data / "manifest.json").read_text()).get("n_users", 11091)
    res = {"machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
                      f"load avg {os.getloadavg()[0]:.1f} at start",
           "dataset": "rlmrec-splits/yelp",
           "eval_memory": [eval_memory(data, n_users, None),
                           eval_memory(data, n_users, args.item_chunk)],
           "ddp": []}
    if not args.skip_ddp:
        res["ddp"] = [epoch_time(data, 1, args.epochs), epoch_time(data, 1, args.epochs, 1),
                      epoch_time(data, 2, args.epochs)]
    res["note"] = ("2-core machine, other jobs running alongside (see load average): "
                   "timings are noisy. torchrun gives each rank OMP_NUM_THREADS=1; a single "
                   "process uses all cores by default, and under contention its intra-op "
                   "threads wait on each other, which is why the 1 x 1-thread row is shown "
                   "too. Same global batch and seed give the same test R@20. Real scale-out "
                   "needs one GPU or node per rank.")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "scale.json").write_text(json.dumps(res, indent=2) + "\n")
    (RESULTS / "scale.md").write_text(render(res))
    print(render(res))


if __name__ == "__main__":
    main()

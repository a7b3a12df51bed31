"""Backbone benchmarks on RLMRec's Amazon-book / Yelp splits.

  fidelity: train backbones with RLMRec's settings, compare test R@20 / N@20 to the paper
            python benchmarks/bench_backbones.py fidelity lightgcn:amazon lightgcn:yelp gccf:amazon autocf:amazon
  speed:    seconds per LightGCN epoch (batch 4096), seconds per full test evaluation, peak RSS
            python benchmarks/bench_backbones.py speed

Results merge into benchmarks/results/backbones.json and are rendered to backbones.md.
Runs live in runs/bench/<backbone>-<dataset>/ (finished ones are reused unless --fresh).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(os.environ.get("LMMREC_BENCH_RESULTS") or REPO / "benchmarks" / "results")
RUNS = Path(os.environ.get("LMMREC_BENCH_RUNS") or REPO / "runs" / "bench")
DATA = Path(os.environ.get("LMMREC_DATA_DIR") or REPO.parent / "shared" / "data")

# RLMRec paper, Table 2 (same splits): (R@20, N@20); None where the paper's table is not at hand.
PAPER = {
    ("lightgcn", "amazon"): (0.1411, 0.0856), ("lightgcn", "yelp"): (0.1157, 0.0733),
    ("gccf", "amazon"): (0.1343, None), ("gccf", "yelp"): (0.1084, None),
    ("sgl", "amazon"): (0.1473, None), ("sgl", "yelp"): (0.1197, None),
    ("simgcl", "amazon"): (0.1512, None), ("simgcl", "yelp"): (0.1254, None),
    ("dccf", "amazon"): (0.1517, None), ("dccf", "yelp"): (0.1249, None),
    ("autocf", "amazon"): (0.1536, None), ("autocf", "yelp"): (0.1280, None),
}
# RLMRec's per-dataset settings that differ from the shipped (amazon) presets.
DATASET_OVERRIDES = {("sgl", "yelp"): ["optim.reg_weight=1e-6", "backbone.cl_weight=1e-3",
                                       "backbone.temperature=0.1"],
                     ("autocf", "yelp"): ["backbone.layers=3", "optim.reg_weight=1e-7",
                                          "backbone.ssl_weight=2"]}


def prepared(name: str) -> Path:
    """A prepared copy of rlmrec-splits/<name> (made once, under runs/bench/data)."""
    from lmmrec.train.rlmrec_splits import prepared_copy

    return prepared_copy(DATA / "rlmrec-splits" / name, RUNS / "data" / name)


def load_results() -> dict:
    path = RESULTS / "backbones.json"
    return json.loads(path.read_text()) if path.exists() else {"fidelity": {}, "speed": {}}


def save_results(res: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "backbones.json").write_text(json.dumps(res, indent=2) + "\n")
    (RESULTS / "backbones.md").write_text(render(res))


def fidelity(specs: list[str], fresh: bool, extra: list[str]) -> None:
    from lmmrec.train.config import resolve_config
    from lmmrec.train.trainer import fit

    res = load_results()
    for spec in specs:
        backbone, dataset = spec.split(":")
        run = RUNS / f"{backbone}-{dataset}"
        if (run / "metrics.json").exists() and not fresh:
            metrics = json.loads((run / "metrics.json").read_text())
        else:
            sets = [f"data={prepared(dataset)}", *DATASET_OVERRIDES.get((backbone, dataset), []),
                    *extra]
            t0 = time.perf_counter()
            metrics = fit(resolve_config(backbone, overrides=sets), run)
            metrics["wall_seconds"] = time.perf_counter() - t0
            (run / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        paper = PAPER.get((backbone, dataset), (None, None))
        t = metrics["test"]
        res["fidelity"][spec] = {
            "recall@20": t["recall@20"], "ndcg@20": t["ndcg@20"],
            "paper_recall@20": paper[0], "paper_ndcg@20": paper[1],
            "best_epoch": metrics["best_epoch"], "epochs": metrics["epochs"],
            "seconds_per_epoch": metrics["seconds_per_epoch"], "test": t}
        save_results(res)
        print(spec, json.dumps(res["fidelity"][spec]["test"]))


def speed(epochs: int, threads: list[int], device: str = "cpu") -> None:
    import numpy as np
    import torch

    from lmmrec.train.config import resolve_config
    from lmmrec.train.sampler import BPRSampler
    from lmmrec.train.trainer import build_model, evaluate_model, load_dataset, loss_terms

    cfg = resolve_config("lightgcn", overrides=[f"data={prepared('amazon')}",
                                                f"train.device={device}"])
    ds = load_dataset(cfg)
    dev = torch.device(device)
    ds.train, ds.test  # noqa: B018 - build the matrices before timing
    gpu = torch.cuda.get_device_name(dev) if dev.type == "cuda" else ""
    out = {"machine": f"{platform.machine()} {os.cpu_count()} cpus {gpu}, torch {torch.__version__}",
           "device": device,
           "load_avg_1m": os.getloadavg()[0], "epochs_timed": epochs}
    for n in threads:
        torch.set_num_threads(n)
        torch.manual_seed(0)
        model = build_model(cfg, ds).to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.optim.lr, fused=True)
        sampler = BPRSampler(ds.train, np.random.default_rng(0))
        times = []
        for _ in range(epochs + 1):  # the first epoch is warm-up
            t0 = time.perf_counter()
            users, pos, neg = (torch.from_numpy(a).to(dev) for a in sampler.epoch())
            for s in range(0, len(users), cfg.train.batch_size):
                batch = (users[s:s + 4096], pos[s:s + 4096], neg[s:s + 4096])
                u, i = model(None)
                loss = sum(loss_terms(model, batch, u, i, cfg).values())
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        evals = []
        for _ in range(3):
            t0 = time.perf_counter()
            evaluate_model(model, ds, "test", cfg)
            evals.append(time.perf_counter() - t0)
        out[f"threads={n}"] = {"seconds_per_epoch_median": float(np.median(times[1:])),
                               "seconds_per_epoch_min": float(min(times[1:])),
                               "full_test_eval_seconds_median": float(np.median(evals)),
                               "full_test_eval_seconds_min": float(min(evals))}
        print(n, out[f"threads={n}"])
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if dev.type == "cuda":
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
    res = load_results()
    res["speed" if device == "cpu" else f"speed-{device}"] = out
    save_results(res)
    print(json.dumps(out, indent=2))


def render(res: dict) -> str:
    lines = ["# Backbone benchmarks (RLMRec splits)", "",
             "Generated by `benchmarks/bench_backbones.py`; numbers in backbones.json.", "",
             *([res["notes"], ""] if res.get("notes") else []),
             "## Fidelity: test metrics vs the RLMRec paper", "",
             "| run | R@20 | paper R@20 | ratio | N@20 | paper N@20 | ratio | best epoch | s/epoch |",
             "|---|---|---|---|---|---|---|---|---|"]
    for spec, r in sorted(res.get("fidelity", {}).items()):
        def ratio(a, b):  # noqa: ANN001, ANN202
            return f"{a / b:.1%}" if b else "–"
        pr, pn = r["paper_recall@20"], r["paper_ndcg@20"]
        lines.append(f"| {spec} | {r['recall@20']:.4f} | {pr or '–'} | {ratio(r['recall@20'], pr)}"
                     f" | {r['ndcg@20']:.4f} | {pn or '–'} | {ratio(r['ndcg@20'], pn)}"
                     f" | {r['best_epoch']} | {r['seconds_per_epoch']:.2f} |")
    for key in sorted(k for k in res if k.startswith("speed")):
        lines += _render_speed(res[key])
    return "\n".join(lines) + "\n"


def _render_speed(sp: dict) -> list[str]:
    lines: list[str] = []
    if sp:
        lines += ["", f"## Speed ({sp.get('device', 'cpu')}): LightGCN on Amazon "
                  "(11,000 x 9,332; batch 4096)", "",
                  f"Machine: {sp.get('machine')}; 1-min load average at start "
                  f"{sp.get('load_avg_1m', 0):.1f} (shared machine); peak RSS "
                  f"{sp.get('peak_rss_mb', 0):.0f} MB.", "",
                  "| threads | s/epoch (median) | s/epoch (min) | full test eval s (median) |",
                  "|---|---|---|---|"]
        for key, v in sp.items():
            if key.startswith("threads="):
                lines.append(f"| {key[8:]} | {v['seconds_per_epoch_median']:.3f} | "
                             f"{v['seconds_per_epoch_min']:.3f} | "
                             f"{v['full_test_eval_seconds_median']:.3f} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fidelity")
    f.add_argument("specs", nargs="*", default=["lightgcn:amazon", "lightgcn:yelp"])
    f.add_argument("--fresh", action="store_true")
    f.add_argument("--set", dest="sets", action="append", default=[])
    s = sub.add_parser("speed")
    s.add_argument("--epochs", type=int, default=5)
    s.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    s.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.cmd == "fidelity":
        fidelity(args.specs, args.fresh, args.sets)
    else:
        speed(args.epochs, args.threads, args.device)


if __name__ == "__main__":
    main()

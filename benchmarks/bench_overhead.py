"""Training-time overhead of the alignment: seconds per epoch of base vs base + aligner.

Same backbone, data, seed and batch size; only `--method` differs. Uses a prepared dataset
and its released motivation artifact (default: amazon-beauty-2023-mini with
releases/motivations/amazon-beauty-2023-mini), or, with `--dataset rlmrec:amazon` (RLMRec's
split in $LMMREC_DATA_DIR/rlmrec-splits, no review text), a synthetic artifact of random
phrase vectors (lmmrec.text.synthetic: it measures cost, not quality). Targets: LMMRec at
most 2x the base at its default cost settings; aligning every step, at most 1.5x.

    python benchmarks/bench_overhead.py [--dataset NAME] [--epochs 17] [--batch-size 256]
        [--methods base,rlmrec-con,lmmrec,lmmrec+align.every=1]
    python benchmarks/bench_overhead.py --dataset rlmrec:amazon --batch-size 4096 --epochs 4 \
        --methods base,lmmrec+align.every=1 --out overhead-full-rlmrec-amazon.json

A method may carry overrides after `+` (`lmmrec+align.every=1+align.sample=128`): it is
timed as its own row, named as written.

Run it on a quiet machine: with other jobs on the cores the ratios mean little (the load
average at the start is recorded).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
GOAL_RATIO = 2.0


def _data_and_text(dataset: str, tmp: Path) -> tuple[Path, Path]:
    """The prepared data and its motivation artifact (released, or synthetic for an RLMRec
    split, which has no review text)."""
    from lmmrec.data.pipeline import prepare_to

    if dataset.startswith("rlmrec:"):
        from lmmrec.text.synthetic import write_synthetic_artifact
        from lmmrec.train.rlmrec_splits import prepared_copy

        root = Path(os.environ.get("LMMREC_DATA_DIR") or REPO.parent / "shared" / "data")
        data = prepared_copy(root / "rlmrec-splits" / dataset.split(":", 1)[1], tmp / "data")
        art = tmp / "synthetic-motivations"
        write_synthetic_artifact(data, art, seed=0)
        return data, art
    data = tmp / "data"
    prepare_to(dataset, data)
    return data, REPO / "releases" / "motivations" / dataset


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="amazon-beauty-2023-mini")
    ap.add_argument("--backbone", default="lightgcn")
    # 1 + 16: past the set-up epoch, whole cycles of align.every=8 on small graphs
    ap.add_argument("--epochs", type=int, default=17)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--methods", default="base,rlmrec-con,lmmrec,lmmrec+align.every=1")
    ap.add_argument("--out", default="overhead.json", help="file name under results/")
    ap.add_argument("--goal-method", default="lmmrec",
                    help="the row held to the goal (the setting the main table uses)")
    ap.add_argument("--goal-ratio", type=float, default=GOAL_RATIO,
                    help="its bound, x the base (2 at the default cost settings; 1.5 for "
                         "aligning every step)")
    args = ap.parse_args()

    from lmmrec.train.config import resolve_config
    from lmmrec.train.trainer import fit

    load_at_start = os.getloadavg()[0]
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        data, art = _data_and_text(args.dataset, Path(tmp))
        for k, name in enumerate(args.methods.split(",")):
            method, *overrides = name.split("+")
            base = {"data": str(data), "method": method}
            if method != "base":
                base["motivations"] = str(art)
            # eval_every > epochs: time training only, no early stop in the window
            cfg = resolve_config(args.backbone, [], [
                f"train.max_epochs={args.epochs}", f"train.eval_every={args.epochs}",
                f"train.batch_size={args.batch_size}", "train.progress=false", *overrides],
                base=base)
            out = Path(tmp) / f"run{k}"
            r = fit(cfg, out)
            secs = [json.loads(line)["seconds"] for line in
                    (out / "log.jsonl").read_text().splitlines()
                    if '"seconds"' in line][: args.epochs]
            # The first epoch carries one-off set-up (graph, caches): left out. The mean of
            # the rest, not the median: `align.every` counts steps over the run, so on a small
            # graph some epochs align and some do not, and the mean is what a run pays.
            rest = secs[1:] or secs
            rows[name] = {"seconds_per_epoch": sum(rest) / len(rest),
                          "seconds_per_epoch_median": sorted(rest)[len(rest) // 2],
                          "first_epoch_seconds": secs[0],
                          "seconds_per_epoch_mean_all": r["seconds_per_epoch"]}
    base_s = rows["base"]["seconds_per_epoch"]
    for m in rows:
        rows[m]["ratio_to_base"] = round(rows[m]["seconds_per_epoch"] / base_s, 3)
    res = {"benchmark": f"alignment overhead, {args.backbone} on {args.dataset}, batch "
                        f"{args.batch_size}, {args.epochs} epochs",
           "methods": rows, "goal_ratio": args.goal_ratio,
           # the row of the setting the main table uses; null when it was not timed
           "goal_method": args.goal_method,
           "lmmrec_meets_goal": (rows[args.goal_method]["ratio_to_base"] <= args.goal_ratio
                                 if args.goal_method in rows else None),
           "cpus": os.cpu_count(), "python": platform.python_version(),
           "load_avg_1m_at_start": load_at_start, "load_avg_1m_at_end": os.getloadavg()[0]}
    out = HERE / "results" / args.out
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()

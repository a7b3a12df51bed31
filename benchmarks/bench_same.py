"""Before/after a refactor: the same runs on two commits must give the same test metrics for
the same seed, and the same seconds per epoch within noise.

    python benchmarks/bench_same.py --before REV [--after HEAD] [--repeat 2] [--epochs 30]
        [--cases lightgcn-rlmrec-amazon,lmmrec-amazon-mi-2014]

Each commit is checked out (detached) under runs/same/trees/REV and imported from there
(PYTHONPATH), so the two run side by side without reinstalling. Cases:

- ``lightgcn-rlmrec-amazon``: LightGCN, RLMRec's settings, on RLMRec's Amazon-book split;
- ``lmmrec-amazon-mi-2014``: LightGCN + LMMRec on amazon-mi-2014 with its released
  motivations (releases/motivations/amazon-mi-2014);
- ``lmmrec-every1-amazon-mi-2014``: the same, aligning on every step (`align.every=1`), where
  the aligner's cost shows most.

A change that reorders floating-point sums (a fused loss) gives metrics equal to rounding,
not bit for bit: the table reports the largest metric difference too.

Both train for ``--epochs`` epochs (validation every 3, early stopping as configured) with
one thread. Runs alternate before/after ``--repeat`` times so drift in machine load hits both
sides alike. Run it on a quiet machine: seconds per epoch is part of the result. Writes
results/same-<before>-<after>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RUNS = REPO / "runs" / "same"
DATA = Path(os.environ.get("LMMREC_DATA_DIR") or REPO.parent / "shared" / "data")


def tree(rev: str) -> tuple[Path, str]:
    """A detached checkout of ``rev`` (made once) and its short hash."""
    sha = subprocess.run(["git", "rev-parse", "--short", rev], cwd=REPO, check=True,
                         capture_output=True, text=True).stdout.strip()
    path = RUNS / "trees" / sha
    if not path.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(path), sha], cwd=REPO,
                       check=True, capture_output=True)
    return path, sha


def cases(epochs: int) -> dict[str, list[str]]:
    """name -> `lmmrec train` arguments (without --out)."""
    common = ["--set", f"train.max_epochs={epochs}", "--set", "train.threads=1",
              "--set", "train.progress=false"]
    amazon = RUNS / "data" / "rlmrec-amazon"
    mi = REPO / "work" / "prepared" / "amazon-mi-2014"
    return {
        "lightgcn-rlmrec-amazon": ["--backbone", "lightgcn", "--data", str(amazon), *common],
        "lmmrec-amazon-mi-2014": ["--backbone", "lightgcn", "--data", str(mi),
                                  "--method", "lmmrec", "--motivations",
                                  str(REPO / "releases" / "motivations" / "amazon-mi-2014"),
                                  *common],
        "lmmrec-every1-amazon-mi-2014": [
            "--backbone", "lightgcn", "--data", str(mi), "--method", "lmmrec", "--motivations",
            str(REPO / "releases" / "motivations" / "amazon-mi-2014"), "--set", "align.every=1",
            *common],
    }


def prepare_data() -> None:
    """The two prepared datasets, made once with the current tree."""
    from lmmrec.train.rlmrec_splits import prepared_copy

    prepared_copy(DATA / "rlmrec-splits" / "amazon", RUNS / "data" / "rlmrec-amazon")
    mi = REPO / "work" / "prepared" / "amazon-mi-2014"
    if not (mi / "manifest.json").exists():
        subprocess.run([sys.executable, "-m", "lmmrec", "data", "prepare", "amazon-mi-2014",
                        "--out", str(mi)], check=True)


def train(src: Path, args: list[str], out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src / "src"), "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "lmmrec", "train", "--out", str(out), "--overwrite",
                    *args], check=True, env=env, stdout=subprocess.DEVNULL)
    m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    m["wall_seconds"] = time.perf_counter() - t0
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", default="HEAD")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--cases", default=None, help="comma-separated subset of the cases")
    a = ap.parse_args()
    prepare_data()
    sides = dict(zip(("before", "after"), (tree(a.before), tree(a.after)), strict=True))
    load = os.getloadavg()[0]
    result: dict = {"before": sides["before"][1], "after": sides["after"][1],
                    "epochs": a.epochs, "repeat": a.repeat, "load_avg_1m_at_start": load,
                    "cases": {}}
    chosen = cases(a.epochs)
    if a.cases:
        chosen = {k: v for k, v in chosen.items() if k in a.cases.split(",")}
    for name, args in chosen.items():
        runs: dict[str, list[dict]] = {"before": [], "after": []}
        for r in range(a.repeat):
            for side, (src, sha) in sides.items():
                out = RUNS / "runs" / f"{name}-{sha}-{r}"
                runs[side].append(train(src, args, out))
                print(name, side, r, runs[side][-1]["test"]["recall@20"],
                      f"{runs[side][-1]['seconds_per_epoch']:.3f} s/epoch", flush=True)
        b, f = runs["before"], runs["after"]
        result["cases"][name] = {
            "test_before": b[0]["test"], "test_after": f[0]["test"],
            "same_test_metrics": all(x["test"] == b[0]["test"] for x in b + f),
            "max_abs_metric_difference": max(abs(x["test"][k] - b[0]["test"][k])
                                             for x in b + f for k in b[0]["test"]),
            "best_epoch": [x["best_epoch"] for x in b + f],
            "seconds_per_epoch_before": [round(x["seconds_per_epoch"], 4) for x in b],
            "seconds_per_epoch_after": [round(x["seconds_per_epoch"], 4) for x in f],
            "median_ratio_after_over_before": round(
                statistics.median(x["seconds_per_epoch"] for x in f)
                / statistics.median(x["seconds_per_epoch"] for x in b), 3)}
    name = f"same-{result['before']}-{result['after']}" + (f"-{'+'.join(chosen)}" if a.cases
                                                           else "")
    (HERE / "results" / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (HERE / "results" / f"{name}.md").write_text(render(result, " ".join(sys.argv[1:])))
    print(render(result, ""))


def render(res: dict, argv: str) -> str:
    lines = [f"# Same runs before ({res['before']}) and after ({res['after']})", "",
             f"Made by `python benchmarks/bench_same.py {argv}`: {res['epochs']} epochs at "
             f"most, one thread, {res['repeat']} alternating repeats per side; load average "
             f"{res['load_avg_1m_at_start']:.2f} at the start.", "",
             "| case | test R@20 before | after | N@20 before | after | identical metrics "
             "| max metric diff. | s/epoch before | after | ratio |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, c in res["cases"].items():
        tb, ta = c["test_before"], c["test_after"]
        lines.append(f"| {name} | {tb['recall@20']:.6f} | {ta['recall@20']:.6f} | "
                     f"{tb['ndcg@20']:.6f} | {ta['ndcg@20']:.6f} | "
                     f"{'yes' if c['same_test_metrics'] else 'no'} | "
                     f"{c.get('max_abs_metric_difference', 0.0):.2g} | "
                     f"{', '.join(map(str, c['seconds_per_epoch_before']))} | "
                     f"{', '.join(map(str, c['seconds_per_epoch_after']))} | "
                     f"{c['median_ratio_after_over_before']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

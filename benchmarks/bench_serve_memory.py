"""Memory of `lmmrec serve` under a sweep of (user, k) on amazon-mi-2014.

    python benchmarks/bench_serve_memory.py [--run RUN_DIR] [--users 300] [--max-seconds 600]

Without --run it prepares amazon-mi-2014 and trains (once; reused afterwards) a quick
LightGCN + LMMRec run with the released motivation artifact, in runs/bench/serve-memory-mi.
The server is `lmmrec serve` with its defaults (64 MiB answer cache, cold start off) on
127.0.0.1; one client asks GET /users/{id}/recommendations?k= for k = 1..100 of each user of
a seeded sample (--users 0: every user) and samples the server's resident memory (RSS) every
500 requests. Acceptance: the largest RSS stays under 2x the RSS at start (after the first
/health). Results: benchmarks/results/serve-memory.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
RUN = REPO / "runs" / "bench" / "serve-memory-mi"
DATA = Path(os.environ.get("LMMREC_DATA_DIR") or REPO.parent / "shared" / "data")
ARTIFACT = REPO / "releases" / "motivations" / "amazon-mi-2014"
BOUND = 2.0
MAX_K = 100
SEED = 19


def lmmrec(*args: object) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    subprocess.run([sys.executable, "-m", "lmmrec.cli.main", *map(str, args)], check=True,
                   env=env)


def train_run(out: Path, epochs: int) -> None:
    data = out.parent / (out.name + "-data")
    if not (data / "manifest.json").exists():
        lmmrec("data", "prepare", str(DATA / "amazon-mi-2014"), "--out", data, "--overwrite")
    lmmrec("train", "--out", out, "--backbone", "lightgcn", "--data", data, "--method",
           "lmmrec", "--motivations", ARTIFACT, "--set", f"train.max_epochs={epochs}",
           "--set", "train.progress=false")


def rss(pid: int) -> int:
    import psutil

    return psutil.Process(pid).memory_info().rss


def main() -> None:
    import httpx
    from bench_serve import finished_run, free_port, user_ids, wait_healthy

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, default=None, help="a finished run (default: train)")
    ap.add_argument("--users", type=int, default=300, help="seeded sample of users; 0: all")
    ap.add_argument("--epochs", type=int, default=5, help="epochs of the trained run")
    ap.add_argument("--max-seconds", type=float, default=600, help="stop the sweep after this")
    ap.add_argument("--out", type=Path, default=RESULTS / "serve-memory.md")
    args = ap.parse_args()

    run = finished_run(args.run, RUN, lambda out: train_run(out, args.epochs))
    ids = user_ids(run)
    sample = ids if args.users <= 0 or args.users >= len(ids) else \
        random.Random(SEED).sample(ids, args.users)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    env.pop("LMMREC_API_KEY", None)
    proc = subprocess.Popen([sys.executable, "-m", "lmmrec.cli.main", "serve", "--run",
                             str(run), "--port", str(port)], env=env)
    try:
        wait_healthy(base, proc, timeout=300)
        start = rss(proc.pid)
        peak, n, errors, answer_bytes = start, 0, 0, 0
        trace = [(0, start)]
        t0 = time.perf_counter()
        stopped_early = False
        with httpx.Client(base_url=base, timeout=30) as c:
            for uid in sample:
                for k in range(1, MAX_K + 1):
                    r = c.get(f"/users/{uid}/recommendations", params={"k": k})
                    n += 1
                    errors += r.status_code != 200
                    answer_bytes += len(r.content)
                    if n % 500 == 0:
                        now = rss(proc.pid)
                        peak = max(peak, now)
                        trace.append((n, now))
                if time.perf_counter() - t0 > args.max_seconds:
                    stopped_early = True
                    break
        seconds = time.perf_counter() - t0
        end = rss(proc.pid)
        peak = max(peak, end)
        trace.append((n, end))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    users_done = n // MAX_K
    ratio = peak / start
    ok = ratio < BOUND and errors == 0
    mib = 2 ** 20
    scope = ("every user" if len(sample) == len(ids) else
             f"a seeded sample of {len(sample)} of {len(ids)} users (seed {SEED}); the full "
             f"sweep of {len(ids) * MAX_K:,} requests is too slow for 2 shared cores")
    lines = [
        "# Memory of `lmmrec serve` under a (user, k) sweep: amazon-mi-2014",
        "",
        f"`python benchmarks/bench_serve_memory.py --users {args.users}` "
        f"({time.strftime('%Y-%m-%d', time.gmtime())}). Run: LightGCN + LMMRec "
        f"({run.name}), served with the defaults (64 MiB answer cache, cold start off). "
        f"Swept: {scope}; k = 1..{MAX_K} for each"
        + (f"; stopped after {args.max_seconds:.0f} s at {users_done} users" if stopped_early
           else "") + ".",
        "",
        "| requests | errors | answer MiB sent | seconds | RSS start MiB | RSS max MiB | "
        "RSS end MiB | max / start | bound |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {n:,} | {errors} | {answer_bytes / mib:.0f} | {seconds:.0f} | {start / mib:.0f} | "
        f"{peak / mib:.0f} | {end / mib:.0f} | {ratio:.2f} | < {BOUND:.0f}x: "
        f"{'met' if ok else 'NOT met'} |",
        "",
        "RSS every 500 requests (requests: MiB): "
        + ", ".join(f"{i}: {b / mib:.0f}" for i, b in trace[:: max(1, len(trace) // 20)]),
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    print(json.dumps({"requests": n, "rss_start": start, "rss_max": peak, "ratio": ratio,
                      "ok": ok}))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()

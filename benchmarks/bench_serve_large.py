"""`lmmrec serve` over a 10^5-item catalogue: GET /users/{id}/recommendations?k=20 (reasons
included) at 50 concurrent connections for 30 s, rotating over every user of the run.

    python benchmarks/bench_serve_large.py [--run RUN_DIR] [--connections 50] [--duration 30]

Without --run it builds (once; reused afterwards) the seeded synthetic catalogue of
benchmarks/synth_catalogue.py (10^5 items, 3x10^4 users, ~9x10^5 interactions, LightGCN +
LMMRec, 1 epoch) in runs/bench/serve-100k. The server is `lmmrec serve` with its defaults
(one uvicorn worker, 64 MiB answer cache) on 127.0.0.1; the load is bench_serve.py's (wrk,
else asyncio + httpx), after a warm-up run of --warmup seconds of the same load. The users
rotate in a cycle longer than the answer cache holds, so nearly every request is computed;
the cache's own hit count (from /health) is reported. The server's resident memory is
sampled every 0.5 s. Then exact scoring of one user against every item is timed in-process
and, where faiss is importable (it is not a dependency), an HNSW index is measured against it
(recall@20 over a seeded sample of users, seen items removed as the service does).
Results: benchmarks/results/serve-100k.json and .md; goal p99 < 50 ms with zero errors.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
RUN = REPO / "runs" / "bench" / "serve-100k"
GOAL_P99_MS = 50.0
K = 20
SEED = 7
MIB = 2 ** 20


class RssSampler(threading.Thread):
    """The server's RSS every ``every`` seconds, until stopped."""

    def __init__(self, pid: int, every: float = 0.5) -> None:
        super().__init__(daemon=True)
        import psutil

        self.proc, self.every = psutil.Process(pid), every
        self.samples: list[tuple[float, int]] = []
        self._stop_event = threading.Event()

    def now(self) -> int:
        return int(self.proc.memory_info().rss)

    def cpu(self) -> float:
        """User + system CPU seconds of the server so far."""
        t = self.proc.cpu_times()
        return float(t.user + t.system)

    def run(self) -> None:
        t0 = time.time()
        while not self._stop_event.wait(self.every):
            self.samples.append((round(time.time() - t0, 1), self.now()))

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def start_server(run: Path, port: int, src: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    env.pop("LMMREC_API_KEY", None)
    return subprocess.Popen([sys.executable, "-m", "lmmrec.cli.main", "serve", "--run",
                             str(run), "--host", "127.0.0.1", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL)


def load(base: str, ids: list[str], connections: int, duration: int) -> dict:
    import shutil

    from bench_serve import run_python_client, run_wrk

    if shutil.which("wrk"):
        return run_wrk(base, ids, connections, duration, threads=1, k=K)
    return run_python_client(base, ids, connections, duration, k=K)


def cache_stats(base: str) -> dict | None:
    """The answer cache's counters (None: a server from before they existed)."""
    import httpx

    return httpx.get(base + "/health").json().get("cache")


def check_answers(base: str, ids: list[str], n: int = 200) -> dict:
    """A seeded sample of answers: all 200, k items each, and how many reasons show
    motivation pairs (the rest fall back to the collaborative reason)."""
    import httpx

    sample = random.Random(SEED).sample(ids, min(n, len(ids)))
    bad = items = matched = 0
    with httpx.Client(base_url=base, timeout=30) as c:
        for u in sample:
            r = c.get(f"/users/{u}/recommendations", params={"k": K})
            got = r.json()["items"] if r.status_code == 200 else []
            bad += r.status_code != 200 or len(got) != K or not all(x["reason"] for x in got)
            items += len(got)
            matched += sum(bool(x["matches"]) for x in got)
    return {"users": len(sample), "bad_answers": bad,
            "items_with_motivation_pairs": round(matched / max(1, items), 3)}


def timed(base: str, ids: list[str], args: argparse.Namespace, rss: RssSampler,
          seconds: int) -> dict:
    """One load run, with the server's CPU per request and the cache's hit rate in it."""
    import psutil

    before, cpu0, all0 = cache_stats(base), rss.cpu(), psutil.cpu_times()
    res = load(base, ids, args.connections, seconds)
    cpu, after, all1 = rss.cpu() - cpu0, cache_stats(base), psutil.cpu_times()
    # what the server itself spent: less sensitive to a shared machine than latency
    res["server_cpu_ms_per_request"] = round(cpu * 1e3 / max(1, res["requests"]), 3)
    total = sum(all1) - sum(all0)
    idle = (all1.idle + all1.iowait) - (all0.idle + all0.iowait)
    res["cpu_busy_share"] = {"all": round(1 - idle / total, 3),  # of every core's time
                             "server": round(cpu / total, 3)}
    res["cache_hit_rate"], res["cache"] = None, after
    if before and after:
        asked = (after["hits"] + after["misses"]) - (before["hits"] + before["misses"])
        res["cache_hit_rate"] = round((after["hits"] - before["hits"]) / max(1, asked), 4)
    return res


def serve_and_load(run: Path, ids: list[str], args: argparse.Namespace) -> dict:
    """Start the server, warm it up, the timed run, then the same load over 100 users
    (every answer cached: what the HTTP stack alone costs here, now), then a check."""
    from bench_serve import free_port, wait_healthy

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(run, port, args.src)
    try:
        t0 = time.time()
        wait_healthy(base, server, timeout=900)
        startup = time.time() - t0
        rss = RssSampler(server.pid)
        rss_start = rss.now()
        rss.start()
        warm = load(base, ids, args.connections, args.warmup)
        rss_warm = rss.now()
        at = warm["requests"] % len(ids)  # the timed run goes on round the cycle
        res = timed(base, ids[at:] + ids[:at], args, rss, args.duration)
        rss.stop()
        rss_end = rss.now()
        floor = timed(base, ids[:100], args, rss, 10)
        checked = check_answers(base, ids)
    finally:
        server.terminate()
        server.wait(timeout=30)
    peak = max([b for _, b in rss.samples] + [rss_end])
    return {"load": res, "warmup": {k: warm[k] for k in ("requests", "p50_ms", "p99_ms",
                                                         "error_count")},
            "cached_100_users": {k: floor[k] for k in (
                "requests_per_s", "p50_ms", "p99_ms", "error_count",
                "server_cpu_ms_per_request", "cache_hit_rate", "cpu_busy_share")},
            "startup_s": round(startup, 1), "answers": checked,
            "rss_mib": {"start": round(rss_start / MIB), "after_warmup": round(rss_warm / MIB),
                        "max": round(peak / MIB), "end": round(rss_end / MIB),
                        "end_over_after_warmup": round(rss_end / rss_warm, 3)},
            "rss_trace_mib": [(t, round(b / MIB)) for t, b in rss.samples[::10]]}


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from ann_probe import probe
    from bench_serve import finished_run, user_ids
    from synth_catalogue import build

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, default=None, help="a finished run (default: build)")
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--duration", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=10, help="seconds of load before timing")
    ap.add_argument("--src", type=Path, default=REPO / "src",
                    help="the lmmrec source the server runs (to compare versions)")
    ap.add_argument("--no-probe", action="store_true", help="skip the scoring/index probe")
    ap.add_argument("--out", type=Path, default=RESULTS / "serve-100k.json")
    ap.add_argument("--machine", default="nothing else ran on the machine",
                    help="what else ran meanwhile (recorded with the result)")
    args = ap.parse_args()

    run = finished_run(args.run, RUN, lambda out: build(out, 30_000, 100_000, 1_000_000))
    ids = user_ids(run)
    load_before = os.getloadavg()
    served = serve_and_load(run, ids, args)
    load_after = os.getloadavg()
    cfg = json.loads((run / "config.json").read_text())
    res = served["load"]
    result = {
        "endpoint": f"GET /users/{{id}}/recommendations?k={K}", "users_rotated": len(ids),
        "connections": args.connections, "duration_s": args.duration, **res,
        "goal": {"p99_ms_below": GOAL_P99_MS, "errors": 0,
                 "met": res["p99_ms"] < GOAL_P99_MS and res["error_count"] == 0},
        **{k: v for k, v in served.items() if k != "load"},
        "scoring": probe(run, seed=SEED) if not args.no_probe else None,
        "server": {"command": "lmmrec serve --run RUN (defaults: uvicorn, 1 worker, "
                   "64 MiB answer cache, 127.0.0.1)", "run": str(run), "src": str(args.src),
                   "backbone": cfg["backbone"]["name"], "method": cfg["method"],
                   **dataset_size(cfg["data"])},
        "machine": machine(load_before, load_after, args.machine),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_results(args.out, result)


def dataset_size(data: str) -> dict:
    from lmmrec.data.dataset import PreparedDataset

    ds = PreparedDataset.load(data)
    return {"data": Path(data).name, "users": ds.n_users, "items": ds.n_items,
            "train_interactions": int(ds.train.nnz)}


def machine(load_before: tuple[float, ...], load_after: tuple[float, ...], note: str) -> dict:
    import platform

    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "loadavg_before": load_before,
            "loadavg_after": load_after, "note": note}


def write_results(out: Path, result: dict) -> None:
    from lmmrec.io import atomic_write_json, atomic_write_text

    atomic_write_json(out, result)
    atomic_write_text(out.with_suffix(".md"), markdown(result))
    print(json.dumps({k: v for k, v in result.items() if k not in ("wrk_stdout",
                                                                   "rss_trace_mib")}, indent=2))


def _share(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def markdown(r: dict) -> str:
    s, m, rss, sc, f = r["server"], r["machine"], r["rss_mib"], r["scoring"], \
        r["cached_100_users"]
    busy = r["cpu_busy_share"]
    lines = [
        f"# `lmmrec serve` at {s['items']:,} items",
        "",
        f"`python benchmarks/bench_serve_large.py` ({r['when'][:10]}). Run: {s['backbone']} + "
        f"{s['method']} on the synthetic catalogue ({s['users']:,} users, {s['items']:,} items,"
        f" {s['train_interactions']:,} training interactions). {r['endpoint']} with reasons, "
        f"{r['connections']} connections, {r['duration_s']} s after "
        f"{r['warmup']['requests']:,} warm-up requests, rotating over all "
        f"{r['users_rotated']:,} users; {r['tool']}; `lmmrec serve` defaults"
        + ("." if Path(s["src"]) == REPO / "src" else f", server code from {s['src']}."),
        "",
        "| load | requests/s | p50 ms | p90 ms | p99 ms | max ms | errors | cache hits | "
        "server CPU ms/request |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| all {r['users_rotated']:,} users | {r['requests_per_s']:,} | {r['p50_ms']:.1f} | "
        f"{r['p90_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:.1f} | {r['error_count']} | "
        f"{_share(r['cache_hit_rate'])} | {r['server_cpu_ms_per_request']:.3f} |",
        f"| 100 users (answers cached: the HTTP stack alone) | {f['requests_per_s']:,} | "
        f"{f['p50_ms']:.1f} | | {f['p99_ms']:.1f} | | {f['error_count']} | "
        f"{_share(f['cache_hit_rate'])} | {f['server_cpu_ms_per_request']:.3f} |",
        "",
        f"Goal p99 < {r['goal']['p99_ms_below']:.0f} ms, 0 errors: "
        f"{'met' if r['goal']['met'] else 'NOT met'}. Server RSS (MiB): {rss['start']} at "
        f"start, {rss['after_warmup']} after warm-up, {rss['max']} at most, {rss['end']} at "
        f"the end. Start-up {r['startup_s']} s (launch to a healthy /health: load the run, "
        f"rank every user's top 100). Answers checked: {r['answers']['users']} users, "
        f"{r['answers']['bad_answers']} bad; {r['answers']['items_with_motivation_pairs']:.0%} "
        "of recommended items have a reason from motivation pairs.",
        "",
        f"Machine: {m['cpus']} CPUs, load average {m['loadavg_before'][0]:.2f} before and "
        f"{m['loadavg_after'][0]:.2f} after; during the timed run {busy['all']:.0%} of all "
        f"CPU time was busy ({busy['server']:.0%} in the server); {m['note']}.",
        "",
        "## Exact scoring and an approximate index",
        "",
        *(sc["lines"] if sc else ["(not measured: --no-probe)"]),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()

"""Load benchmark of `lmmrec serve`: GET /users/{id}/recommendations?k=20 at 50 concurrent
connections for 30 s, rotating over every real user id of the run's dataset.

    python benchmarks/bench_serve.py [--run RUN_DIR] [--connections 50] [--duration 30]

Without --run it trains (once; reused afterwards) a LightGCN + LMMRec run on
amazon-beauty-2023-mini with the frozen motivation fixture, in runs/bench/serve-beauty-mini.
The server is `lmmrec serve` (one uvicorn worker) on 127.0.0.1 only; the load generator is
`wrk` (Debian: apt-get install -y wrk) with a Lua script over the user ids, or, where wrk is
missing, an asyncio + httpx client in a separate process. Every user is requested once before
the timed run (warm-up). Results: benchmarks/results/serve.json (requests/s, p50/p90/p99/max
latency, errors); goal p99 < 50 ms with zero errors.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
RUN = REPO / "runs" / "bench" / "serve-beauty-mini"
DATA = Path(os.environ.get("LMMREC_DATA_DIR") or REPO.parent / "shared" / "data")
FIXTURE = REPO / "tests" / "fixtures" / "motivations-beauty-mini"
GOAL_P99_MS = 50.0
K = 20

# ids are read from a file, one a line, so the script stays small however many users rotate
LUA = """
local ids = {}
for line in io.lines(%(ids_file)s) do ids[#ids + 1] = line end
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/users/" .. ids[(n %% #ids) + 1] .. "/recommendations?k=%(k)d")
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT {\\"requests\\": %%d, \\"duration_us\\": %%d, \\"bytes\\": %%d, "
    .. "\\"p50_us\\": %%d, \\"p90_us\\": %%d, \\"p99_us\\": %%d, \\"max_us\\": %%d, "
    .. "\\"mean_us\\": %%f, \\"errors\\": {\\"connect\\": %%d, \\"read\\": %%d, "
    .. "\\"write\\": %%d, \\"status\\": %%d, \\"timeout\\": %%d}}\\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def train_run(out: Path) -> None:
    """LightGCN + LMMRec on beauty-mini (prepared, fixture embedded), 20 epochs."""
    from lmmrec.data.pipeline import prepare_to
    from lmmrec.text.embed import embed_artifact
    from lmmrec.train.config import resolve_config
    from lmmrec.train.trainer import fit

    work = out.parent / (out.name + "-inputs")
    data, mot = work / "beauty", work / "motivations"
    if not (data / "manifest.json").exists():
        shutil.rmtree(data, ignore_errors=True)
        prepare_to(str(DATA / "amazon-beauty-2023-mini"), data)
    if not (mot / "embeddings.npy").exists():
        shutil.rmtree(mot, ignore_errors=True)
        shutil.copytree(FIXTURE, mot)
        embed_artifact(mot)
    cfg = resolve_config("lightgcn", [], ["train.max_epochs=20", "train.progress=false"],
                         base={"method": "lmmrec", "data": str(data), "motivations": str(mot)})
    fit(cfg, out)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(base: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    import httpx

    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(base + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError("server did not become healthy")


def user_ids(run: Path) -> list[str]:
    from lmmrec.data.dataset import PreparedDataset

    cfg = json.loads((run / "config.json").read_text())
    return [str(u) for u in PreparedDataset.load(cfg["data"]).user_ids]


def run_wrk(base: str, ids: list[str], connections: int, duration: int, threads: int,
            k: int = K) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        script, ids_file = Path(tmp) / "rotate.lua", Path(tmp) / "ids.txt"
        ids_file.write_text("".join(i + "\n" for i in ids))
        script.write_text(LUA % {"ids_file": json.dumps(str(ids_file)), "k": k})
        cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "5s",
               "-s", str(script), base]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result:\n{out.stdout}\n{out.stderr}")
    r = json.loads(line[len("RESULT "):])
    seconds = r["duration_us"] / 1e6
    errors = dict(r["errors"])
    return {"tool": "wrk " + _wrk_version(), "threads": threads,
            "requests": r["requests"], "seconds": round(seconds, 2),
            "requests_per_s": round(r["requests"] / seconds, 1),
            "p50_ms": r["p50_us"] / 1e3, "p90_ms": r["p90_us"] / 1e3,
            "p99_ms": r["p99_us"] / 1e3, "max_ms": r["max_us"] / 1e3,
            "mean_ms": round(r["mean_us"] / 1e3, 3), "errors": errors,
            "error_count": sum(errors.values()), "wrk_stdout": out.stdout.strip()}


def _wrk_version() -> str:
    out = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    return (out.stdout + out.stderr).split("[")[0].replace("wrk", "").strip()


PY_CLIENT = r"""
import asyncio, json, sys, time
import httpx

base, connections, duration, k = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
ids = json.loads(sys.stdin.read())
lat, errors = [], {"status": 0, "other": 0}

async def worker(c, w, stop):
    n = w
    while time.perf_counter() < stop:
        t = time.perf_counter()
        try:
            r = await c.get(f"/users/{ids[n % len(ids)]}/recommendations?k={k}")
            if r.status_code != 200:
                errors["status"] += 1
        except httpx.HTTPError:
            errors["other"] += 1
        lat.append(time.perf_counter() - t)
        n += connections

async def main():
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=5) as c:
        t0 = time.perf_counter()
        stop = t0 + duration
        await asyncio.gather(*(worker(c, w, stop) for w in range(connections)))
        return time.perf_counter() - t0

secs = asyncio.run(main())
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1e3
print(json.dumps({"requests": len(lat), "seconds": secs, "p50_ms": q(.5), "p90_ms": q(.9),
                  "p99_ms": q(.99), "max_ms": lat[-1] * 1e3, "errors": errors}))
"""


def run_python_client(base: str, ids: list[str], connections: int, duration: int,
                      k: int = K) -> dict:
    out = subprocess.run([sys.executable, "-c", PY_CLIENT, base, str(connections),
                          str(duration), str(k)], input=json.dumps(ids), capture_output=True,
                         text=True, timeout=duration + 120)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return {"tool": "asyncio+httpx (wrk not installed)", **r,
            "requests_per_s": round(r["requests"] / r["seconds"], 1),
            "error_count": sum(r["errors"].values())}


def finished_run(given: Path | None, default: Path, train: Callable[[Path], None]) -> Path:
    """The run to serve: ``given`` (which must be finished), else ``default``, trained by
    ``train`` on first use."""
    run = given or default
    if not (run / "best.pt").exists():
        if given is not None:
            sys.exit(f"{run}: not a finished run")
        print(f"training the benchmark run in {run} ...", file=sys.stderr)
        train(run)
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, default=None, help="a finished run (default: train)")
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--duration", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1, help="wrk threads")
    ap.add_argument("--out", type=Path, default=RESULTS / "serve.json")
    args = ap.parse_args()

    run = finished_run(args.run, RUN, train_run)
    ids = user_ids(run)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k != "LMMREC_API_KEY"}
    lmmrec = shutil.which("lmmrec", path=str(Path(sys.executable).parent)) or "lmmrec"
    server = subprocess.Popen([lmmrec, "serve", "--run", str(run), "--host", "127.0.0.1",
                               "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        t0 = time.time()
        wait_healthy(base, server)
        startup = time.time() - t0
        import httpx

        with httpx.Client(base_url=base) as c:  # warm-up: every user once
            bad = sum(c.get(f"/users/{u}/recommendations?k={K}").status_code != 200
                      for u in ids)
        if bad:
            raise RuntimeError(f"{bad} warm-up requests failed")
        if shutil.which("wrk"):
            res = run_wrk(base, ids, args.connections, args.duration, args.threads)
        else:
            res = run_python_client(base, ids, args.connections, args.duration)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
    cfg = json.loads((run / "config.json").read_text())
    result = {
        "endpoint": f"GET /users/{{id}}/recommendations?k={K}",
        "users_rotated": len(ids), "connections": args.connections,
        "duration_s": args.duration, **res,
        "goal": {"p99_ms_below": GOAL_P99_MS, "errors": 0,
                 "met": res["p99_ms"] < GOAL_P99_MS and res["error_count"] == 0},
        "server": {"command": "lmmrec serve (uvicorn, 1 worker, 127.0.0.1)",
                   "startup_s": round(startup, 2), "run": str(run),
                   "backbone": cfg["backbone"]["name"], "method": cfg["method"],
                   "data": Path(cfg["data"]).name},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "loadavg_after": os.getloadavg()},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, args.out)
    print(json.dumps({k: v for k, v in result.items() if k != "wrk_stdout"}, indent=2))


if __name__ == "__main__":
    main()

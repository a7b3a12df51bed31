"""Local-LLM extraction throughput on amazon-mi-2014 (goal: >= 20 reviews per minute here).

Runs the real pipeline (prompt review_v1, Qwen2.5-1.5B Q4_K_M via xllamacpp, JSON-schema
constrained) on the first N training reviews into a fresh store and records reviews per
minute, prompt and generated tokens per second and the prefix-cache hit rate. Run it on an
otherwise idle machine: numbers scale with free cores.

    python benchmarks/bench_extract.py [--n 40] [--threads 0]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
GOAL_RPM = 20.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--dataset", default="amazon-mi-2014")
    args = ap.parse_args()

    from lmmrec.data.pipeline import prepare_to
    from lmmrec.llm import job
    from lmmrec.llm.backends import LocalBackend, LocalConfig
    from lmmrec.llm.prompts import PROMPT_VERSION
    from lmmrec.llm.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        ds = prepare_to(args.dataset, Path(tmp) / "data")
        inputs = job.review_inputs(ds)
        t_load = time.perf_counter()
        backend = LocalBackend(LocalConfig(threads=args.threads))
        load_s = time.perf_counter() - t_load
        with Store(Path(tmp) / "store.sqlite", backend.model_id, PROMPT_VERSION) as st:
            p = job.plan(inputs, st, limit=args.n)
            summary = job.run(backend, st, p)
    res = {
        "benchmark": f"local extraction, {args.dataset}, first {args.n} training reviews",
        "model": backend.model_id, "prompt_version": PROMPT_VERSION,
        "model_load_s": round(load_s, 2), **summary.as_dict(),
        "avg_prompt_tokens": round(summary.prompt_tokens / max(1, args.n), 1),
        "avg_output_tokens": round(summary.output_tokens / max(1, args.n), 1),
        "goal_reviews_per_minute": GOAL_RPM,
        "meets_goal": summary.as_dict()["reviews_per_minute"] >= GOAL_RPM,
        "cpus": os.cpu_count(), "python": platform.python_version(),
        "load_avg_1m_at_end": os.getloadavg()[0],
    }
    out = HERE / "results" / "extract.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()

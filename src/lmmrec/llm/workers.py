"""N extraction processes over one store, each owning a shard (`--shard i/N`).

Each process owns its llama.cpp model and threads; SQLite's WAL lets them commit to the same
file. On one machine, one process that batches several sequences (`local.n_parallel`) is
the faster choice; several workers pay off where one process cannot fill the machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from lmmrec.errors import LmmrecError
from lmmrec.llm.store import Store


def worker_commands(data: Path, store: Path, backend: str, config: Path | None,
                    overrides: list[str], workers: int, retry_failed: bool,
                    items: bool = False, prompt: str | None = None) -> list[list[str]]:
    threads = max(1, (os.cpu_count() or 1) // workers)
    cmds = []
    for i in range(workers):
        cmd = [sys.executable, "-m", "lmmrec.cli.main", "extract", "--data", str(data),
               "--store", str(store), "--backend", backend, "--shard", f"{i}/{workers}"]
        if config is not None:
            cmd += ["--config", str(config)]
        for o in overrides:
            cmd += ["--set", o]
        if backend == "local" and not any(o.startswith("local.threads=") for o in overrides):
            cmd += ["--set", f"local.threads={threads}"]
        if retry_failed:
            cmd.append("--retry-failed")
        if items:
            cmd.append("--items")
        if prompt is not None and not items:
            cmd += ["--prompt", prompt]
        cmds.append(cmd)
    return cmds


def run_workers(data: Path, store: Path, backend: str, config: Path | None,
                overrides: list[str], workers: int, retry_failed: bool = False,
                poll_s: float = 2.0, items: bool = False,
                prompt: str | None = None) -> dict[str, Any]:
    """Start the shard processes, show the store filling up, and wait for all of them."""
    from rich.console import Console
    from rich.progress import Progress

    # pandas: lazy, this module loads with `lmmrec --help` (cli.extract's run_workers)
    from lmmrec.data.dataset import PreparedDataset
    from lmmrec.llm import inputs as llm_inputs
    from lmmrec.llm.prompts import PROMPT_VERSION

    prompt = prompt or PROMPT_VERSION
    ds = PreparedDataset.load(data, require_splits=False)
    inputs = llm_inputs.item_inputs(ds) if items else llm_inputs.review_inputs(ds, prompt)
    total = len({i.input_hash() for i in inputs})
    store.parent.mkdir(parents=True, exist_ok=True)
    cmds = worker_commands(data, store, backend, config, overrides, workers, retry_failed,
                           items, prompt)
    logs = [store.with_name(f"{store.name}.worker{i}.log") for i in range(workers)]
    procs = [subprocess.Popen(c, stdout=open(lg, "w"), stderr=subprocess.STDOUT)  # noqa: SIM115
             for c, lg in zip(cmds, logs, strict=True)]

    def landed() -> int:
        if not store.exists():
            return 0
        with Store(store) as st:
            c = st.counts()
        return c["done"] + c["failed"] + c["unanswered"]

    try:
        with Progress(console=Console(stderr=True)) as bar:
            task = bar.add_task(f"extract x{workers}", total=total, completed=landed())
            while any(p.poll() is None for p in procs):
                time.sleep(poll_s)
                bar.update(task, completed=landed())
            bar.update(task, completed=landed())
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()
        raise
    codes = [p.wait() for p in procs]
    if any(codes):
        bad = [str(lg) for lg, c in zip(logs, codes, strict=True) if c]
        raise LmmrecError(f"{sum(1 for c in codes if c)} worker(s) failed; see {', '.join(bad)}")
    with Store(store) as st:
        return {"workers": workers, "store": st.counts(), "reviews": total}

"""Tiny real datasets, a filled extraction store and CLI runners for the extraction,
export and service reliability tests. The LLM is always the fake OpenAI server."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

from llm.fake_openai import FakeOpenAI

REPO = Path(__file__).resolve().parents[2]
BEAUTY = "amazon-beauty-2023-mini"


def make_tiny(data_dir: Path, raw_root: Path, out: Path, users: slice) -> Path:
    """A prepared dataset of a few real beauty users (leave-one-out split)."""
    from lmmrec.data.pipeline import prepare_to

    src = data_dir / BEAUTY
    with gzip.open(src / "history_reviews.json.gz", "rt", encoding="utf-8") as f:
        history = json.load(f)
    keys = list(history)[users]
    raw = raw_root / out.name
    raw.mkdir(parents=True)
    with gzip.open(raw / "history_reviews.json.gz", "wt", encoding="utf-8") as f:
        json.dump({u: history[u] for u in keys}, f)
    (raw / "meta_data.json.gz").write_bytes((src / "meta_data.json.gz").read_bytes())
    prepare_to(str(raw), out, fmt="amazon2023", split="loo")
    return out


def openai_sets(base_url: str, concurrency: int = 2) -> list[str]:
    """`--set` overrides pointing the openai backend at the fake server, retrying fast."""
    sets = [f"openai.base_url={base_url}", f"openai.concurrency={concurrency}",
            "openai.timeout_s=10", "openai.max_retries=1", "openai.backoff_base_s=0.01"]
    return [x for s in sets for x in ("--set", s)]


def fill_store(data: Path, store: Path) -> None:
    """Extract every review of ``data`` into ``store`` through the fake server."""
    from lmmrec.data.dataset import PreparedDataset
    from lmmrec.llm import inputs as llm_inputs
    from lmmrec.llm import job
    from lmmrec.llm.backends import OpenAIBackend, OpenAIConfig
    from lmmrec.llm.prompts import PROMPT_VERSION
    from lmmrec.llm.store import Store

    inputs = llm_inputs.review_inputs(PreparedDataset.load(data))
    with FakeOpenAI() as fake:
        backend = OpenAIBackend(OpenAIConfig(base_url=fake.base_url, concurrency=2,
                                             max_retries=1, backoff_base_s=0.01))
        with Store(store, backend.model_id, PROMPT_VERSION) as st:
            job.run(backend, st, job.plan(inputs, st))
        backend.close()


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("OPENAI_API_KEY", None)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("PYTHONPATH", str(REPO / "src"))  # the code under test, as in-process
    return env


def lmmrec_cmd(*args: object) -> list[str]:
    return [sys.executable, "-m", "lmmrec.cli.main", *[str(a) for a in args]]


def popen(*args: object, **kw: object) -> subprocess.Popen[str]:
    return subprocess.Popen(lmmrec_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=cli_env(), cwd=REPO, **kw)  # type: ignore[arg-type]


def one_line_error(result: object, progress: bool = False) -> str:
    """The error line of a refused command (a CliResult or a CompletedProcess): exit 2,
    one line, no traceback (``progress``: after the run's own progress lines)."""
    code = getattr(result, "code", getattr(result, "returncode", None))
    err = getattr(result, "err", None) or getattr(result, "stderr", "")
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code == 2, err
    assert "Traceback" not in err, err
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    assert progress or len(lines) == 1, err
    return lines[-1]

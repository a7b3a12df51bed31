"""docs/OWN_DATA.md, run: every `lmmrec` command of its bash blocks, in order, on the
fixture CSV, and every output it quotes (up to a "...") found in what the command printed.

Two things differ from a user's run, neither in what is computed: the OpenAI-compatible
server is a fake one answering with each review's clauses (tests/explain/own_reviews.py),
and `train` gets --set train.max_epochs=2 (plus no progress bar, one thread) to stay fast."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

from llm.fake_openai import FakeOpenAI

from .own_reviews import REVIEWS, responder

DOC = Path(__file__).resolve().parents[2] / "docs" / "OWN_DATA.md"
DOC_URL = "http://127.0.0.1:8000/v1"
FAST = ["--set", "train.max_epochs=2", "--set", "train.progress=false",
        "--set", "train.threads=1"]


def blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced block, in order."""
    return [(m.group(1), m.group(2)) for m in
            re.finditer(r"^```(\w*)\n(.*?)^```", text, flags=re.S | re.M)]


def test_every_command_of_the_page_runs(cli, tmp_path, monkeypatch):
    shutil.copy(REVIEWS, tmp_path / "reviews.csv")
    monkeypatch.chdir(tmp_path)
    ran: list[str] = []
    last_output = ""
    checked = 0
    with FakeOpenAI(responder) as fake:
        previous = ""
        for lang, body in blocks(DOC.read_text(encoding="utf-8")):
            if lang == "bash":
                for line in body.splitlines():
                    if not line.startswith("lmmrec "):
                        continue
                    args = shlex.split(line.replace(DOC_URL, fake.base_url))[1:]
                    if args[0] == "train":
                        args += FAST
                    r = cli(*args)
                    assert r.code == 0, f"{line}\n{r.err}"
                    group = args[0] in ("data", "extract") and not args[1].startswith("-")
                    ran.append(" ".join(args[:2]) if group else args[0])
                    last_output = r.out + r.err
            elif lang == "text" and previous == "bash":
                for want in body.splitlines():
                    want = want.split("...")[0].rstrip()
                    if want.strip():
                        assert want.strip() in last_output, (want, last_output)
                        checked += 1
            previous = lang
        assert fake.n_requests > 0  # the extraction went through the (fake) LLM server
    assert ran[0] == "data prepare" and "recommend" in ran[-1]
    for step in ("extract", "extract stats", "extract export", "embed", "train",
                 "recommend"):
        assert step in ran, step
    assert ran.count("train") == 2  # with motivations, and on raw reviews without them
    assert checked >= 5
    # the cold start quoted on the page: the exact-match item first
    assert re.search(r"^\s+1\. P01\b", last_output, flags=re.M)
    assert (tmp_path / "shop-run" / "best.pt").exists()
    assert (tmp_path / "shop-run-raw" / "best.pt").exists()

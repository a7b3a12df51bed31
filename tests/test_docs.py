"""The commands in README.md and docs/ run as written.

Every fenced ```bash block is checked: each `lmmrec` command names real subcommands and
options, each `make` target and `python benchmarks/...` script exists. Blocks marked
`<!-- runnable -->` (the ones that need no LLM, server or GPU; ```python ones too) are also
run, in order, in a scratch folder holding only `releases/`, with no LMMREC_DATA_DIR: as on
a fresh clone.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RUNNABLE = "<!-- runnable -->"
FENCE = re.compile(r"^```(bash|python)\n(.*?)^```", re.M | re.S)


def blocks(page: Path, lang: str = "bash") -> list[tuple[bool, str]]:
    """(runnable, text) of each ``lang`` block of ``page``."""
    text = page.read_text()
    out = []
    for m in FENCE.finditer(text):
        if m.group(1) != lang:
            continue
        before = text[:m.start()].rstrip().splitlines()
        out.append((bool(before) and before[-1].strip() == RUNNABLE, m.group(2)))
    return out


def runnable_in_order(page: Path) -> list[tuple[str, str]]:
    """(language, text) of the runnable blocks of ``page``, in page order."""
    text = page.read_text()
    out = []
    for m in FENCE.finditer(text):
        before = text[:m.start()].rstrip().splitlines()
        if before and before[-1].strip() == RUNNABLE:
            out.append((m.group(1), m.group(2)))
    return out


def commands(block: str) -> list[list[str]]:
    """Shell commands of a block: continuation lines joined, comments and `&`/`;` cut."""
    joined = re.sub(r"\\\n\s*", " ", block)
    out = []
    for line in joined.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        for part in re.split(r"\s*(?:;|&&|&)\s*", line):
            if part.strip():
                out.append(shlex.split(part))
    return out


def _lmmrec_args(argv: list[str]) -> list[str] | None:
    if argv and argv[0] == "lmmrec":
        return argv[1:]
    if "-m" in argv and argv.index("-m") + 1 < len(argv) and argv[argv.index("-m") + 1] in (
            "lmmrec", "lmmrec.cli.main"):
        return argv[argv.index("-m") + 2:]
    return None


@functools.cache
def _root():  # noqa: ANN202
    import typer

    from lmmrec.cli.main import build_app

    return typer.main.get_command(build_app())


def check_lmmrec(args: list[str]) -> None:
    """The subcommand path and every option of ``lmmrec ARGS`` exist."""
    import typer

    cmd = _root()  # typer vendors its own click: groups are told apart by get_command
    i = 0
    while hasattr(cmd, "get_command") and i < len(args) and not args[i].startswith("-"):
        sub = cmd.get_command(typer.Context(cmd), args[i])
        if sub is None:  # fine only as an argument of the group's own callback
            assert any(p.param_type_name == "argument" for p in cmd.params), (
                f"`lmmrec {' '.join(args)}`: no subcommand {args[i]}")
            break
        cmd, i = sub, i + 1
    assert not hasattr(cmd, "get_command") or cmd.invoke_without_command, (
        f"`lmmrec {' '.join(args)}`: no subcommand")
    opts = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
    for a in args[i:]:
        if a.startswith("-") and not re.fullmatch(r"-\d.*", a):
            name = a.split("=", 1)[0]
            assert name in opts, f"`lmmrec {' '.join(args)}`: no option {name} ({cmd.name})"


def check_command(argv: list[str]) -> None:
    if argv[0] in ("for", "done", "wait", "export", "vllm", "ollama", "cd"):
        return
    args = _lmmrec_args(argv)
    if args is not None:
        check_lmmrec(args)
    elif argv[0] == "make":
        targets = re.findall(r"^([\w-]+):", (REPO / "Makefile").read_text(), re.M)
        for t in argv[1:]:
            assert "=" in t or t in targets, f"make {t}: no such target"
    elif argv[0] == "python" and argv[1].startswith("benchmarks/"):
        assert (REPO / argv[1]).is_file(), argv[1]


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_command_names_real_things(page: Path) -> None:
    found = [argv for _, b in blocks(page) for argv in commands(b)]
    for argv in found:
        check_command(argv)


def test_the_pages_have_runnable_blocks() -> None:
    """README and the data, training and recommendation pages each run something."""
    for name in ("README.md", "DATA.md", "TRAINING.md", "RECOMMEND.md"):
        page = next(p for p in PAGES if p.name == name)
        assert any(r for r, _ in blocks(page)), name


def test_the_checker_catches_a_wrong_option() -> None:
    with pytest.raises(AssertionError, match="no option --epochs"):
        check_lmmrec(["train", "--backbone", "mf", "--epochs", "3"])
    for wrong in (["extract", "nonsense"], ["data", "nonsense"]):
        with pytest.raises(AssertionError, match="no subcommand"):
            check_lmmrec(wrong)
    check_lmmrec(["extract", "merge", "--out", "a.sqlite", "b.sqlite"])


def _shim(tmp: Path) -> dict[str, str]:
    """PATH with an `lmmrec` that is this interpreter's and this checkout's, and no
    LMMREC_DATA_DIR."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "lmmrec"
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m lmmrec "$@"\n')
    exe.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "OMP_NUM_THREADS": "1",  # this checkout's package, whatever the cwd
           "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    env.pop("LMMREC_DATA_DIR", None)
    return env


RUN_PAGES = [p for p in PAGES if runnable_in_order(p)]


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("page", RUN_PAGES, ids=[p.name for p in RUN_PAGES])
def test_runnable_blocks_run(page: Path, tmp_path: Path) -> None:
    work = tmp_path / "clone"
    work.mkdir()
    (work / "releases").symlink_to(REPO / "releases")
    env = _shim(tmp_path)
    for lang, block in runnable_in_order(page):
        cmd = (["bash", "-euo", "pipefail", "-c", block] if lang == "bash"
               else [sys.executable, "-c", block])
        p = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True,
                           timeout=1100)
        assert p.returncode == 0, f"{page.name}:\n{block}\n{p.stdout[-2000:]}{p.stderr[-3000:]}"

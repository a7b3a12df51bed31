"""lmmrec.io: a file or folder is replaced whole. Killed or failing at any step, the target
holds the old content or the new one (after the next writer's recovery), never neither."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lmmrec import io
from lmmrec.errors import DataError

from .extract_helpers import cli_env


def _folder(path: Path, tag: str) -> Path:
    path.mkdir()
    (path / "a.txt").write_text(tag)
    (path / "sub").mkdir()
    (path / "sub" / "b.txt").write_text(tag)
    return path


def _tag(path: Path) -> str:
    a, b = (path / "a.txt").read_text(), (path / "sub" / "b.txt").read_text()
    assert a == b
    return a


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    f = tmp_path / "x.json"
    io.atomic_write_text(f, "old")
    io.atomic_write_bytes(f, b"new")
    assert f.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_atomic_write_gives_a_plain_files_mode(tmp_path: Path) -> None:
    """Not mkstemp's 0600: a new file gets what open(path, "w") gives under the umask (a
    released artifact must be readable by the service's user), a replaced one keeps its own."""
    old = os.umask(0o027)
    try:
        io.atomic_write_text(tmp_path / "new.txt", "x")
        assert (tmp_path / "new.txt").stat().st_mode & 0o777 == 0o640
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
        io.atomic_write_text(tmp_path / "new2.txt", "y")
        assert (tmp_path / "new2.txt").stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
        with io.new_dir(tmp_path / "folder") as d:
            (d / "f").write_text("z")
        assert (tmp_path / "folder").stat().st_mode & 0o777 == 0o750
    finally:
        os.umask(old)
    kept = tmp_path / "kept.txt"
    kept.write_text("a")
    kept.chmod(0o640)
    io.atomic_write_text(kept, "b")
    assert kept.read_text() == "b" and kept.stat().st_mode & 0o777 == 0o640


def test_atomic_write_failing_keeps_the_old_file(tmp_path: Path, monkeypatch) -> None:
    f = tmp_path / "x.json"
    f.write_text("old")

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="No space"):
        io.atomic_write_text(f, "new")
    monkeypatch.undo()
    assert f.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]  # the temp file is gone


def test_temp_names_are_unique_per_write(tmp_path: Path, monkeypatch) -> None:
    seen = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (seen.append(Path(a).name), real(a, b)))
    io.atomic_write_text(tmp_path / "x", "1")
    io.atomic_write_text(tmp_path / "x", "2")
    assert len(set(seen)) == 2 and all(f".x.tmp-{os.getpid()}-" in s for s in seen)


@pytest.mark.parametrize("exchange", [True, False])
def test_replace_dir_swaps_whole_folders(tmp_path: Path, monkeypatch, exchange: bool) -> None:
    if not exchange:
        monkeypatch.setattr(io, "_exchange", lambda a, b: False)
    dest = _folder(tmp_path / "out", "old")
    io.replace_dir(_folder(tmp_path / "new", "new"), dest)
    assert _tag(dest) == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    io.replace_dir(_folder(tmp_path / "first", "first"), tmp_path / "fresh")
    assert _tag(tmp_path / "fresh") == "first"


def test_replace_dir_failing_between_the_renames_keeps_the_old(tmp_path: Path,
                                                              monkeypatch) -> None:
    monkeypatch.setattr(io, "_exchange", lambda a, b: False)
    dest = _folder(tmp_path / "out", "old")
    new = _folder(tmp_path / "new", "new")
    real, calls = os.replace, []

    def second_fails(a, b):
        calls.append((a, b))
        if len(calls) == 2:  # the new folder moving in
            raise OSError(5, "Input/output error")
        return real(a, b)

    monkeypatch.setattr(os, "replace", second_fails)
    with pytest.raises(OSError):
        io.replace_dir(new, dest)
    monkeypatch.undo()
    assert _tag(dest) == "old"


KILL = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    from lmmrec import io
    if sys.argv[3] == "rename":
        io._exchange = lambda a, b: False
    real, n = os.replace, [0]
    def replace(a, b):
        n[0] += 1
        if sys.argv[4].isdigit() and n[0] == int(sys.argv[4]):
            os._exit(9)  # killed here: no cleanup of any kind runs
        return real(a, b)
    os.replace = replace
    real_rmtree = io.shutil.rmtree
    def rmtree(p, *a, **k):
        if sys.argv[4] == "rmtree":
            os._exit(9)
        return real_rmtree(p, *a, **k)
    io.shutil.rmtree = rmtree
    io.replace_dir(Path(sys.argv[1]), Path(sys.argv[2]))
""")


@pytest.mark.parametrize(("mode", "step"), [("rename", "1"), ("rename", "2"),
                                            ("rename", "rmtree"), ("exchange", "rmtree")])
def test_replace_dir_killed_at_each_step_leaves_old_or_new(tmp_path: Path, mode: str,
                                                           step: str) -> None:
    dest = _folder(tmp_path / "out", "old")
    new = _folder(tmp_path / "new", "new")
    r = subprocess.run([sys.executable, "-c", KILL, str(new), str(dest), mode, step],
                       env=cli_env(), capture_output=True, text=True, timeout=60)
    assert r.returncode in (0, 9), r.stderr
    # the next writer recovers first (what export and embed do on start)
    io.clean_orphans(dest)
    assert _tag(dest) in ("old", "new")
    if step == "rmtree":  # killed after the swap: the new one is in place
        assert _tag(dest) == "new"
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names in (["new", "out"], ["out"]), names  # nothing else left behind


def test_clean_orphans_spares_live_writers(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    mine = tmp_path / f".out.tmp-{os.getpid()}-abc"
    dead = tmp_path / f".out.tmp-{2 ** 22 + 1}-abc"
    other = tmp_path / f".other.tmp-{2 ** 22 + 1}-abc"
    for p in (mine, dead, other):
        p.mkdir()
    assert io.clean_orphans(dest) == [dead]
    assert mine.exists() and other.exists() and not dead.exists()


def test_check_replaceable(tmp_path: Path) -> None:
    io.check_replaceable(tmp_path / "none", False, False, "x")
    (tmp_path / "empty").mkdir()
    io.check_replaceable(tmp_path / "empty", False, False, "x")
    full = _folder(tmp_path / "full", "t")
    with pytest.raises(DataError, match="not an artifact"):
        io.check_replaceable(full, True, False, "an artifact")
    with pytest.raises(DataError, match="--overwrite"):
        io.check_replaceable(full, False, True, "an artifact")
    io.check_replaceable(full, True, True, "an artifact")


def test_deeply_nested_json_is_a_data_error(tmp_path: Path) -> None:
    f = tmp_path / "deep.json"
    f.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(DataError, match="nested too deeply"):
        io.read_json(f)
    f.write_bytes(b"\xff\xfe{")
    with pytest.raises(DataError, match=str(f)):
        io.read_json(f)


# A writer that stops at its N-th step (lmmrec.io._step) and says which; the test SIGKILLs it
# there. argv: kind (file | dir), target, N, mode (exchange | rename), new content.
PAUSE = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from lmmrec import io
    kind, target, stop, mode, tag = sys.argv[1:6]
    if mode == "rename":
        io._exchange = lambda a, b: False
    seen = [0]
    def step(name):
        seen[0] += 1
        if seen[0] == int(stop):
            print(name, flush=True)
            time.sleep(120)  # killed here
    io._step = step
    if kind == "file":
        io.atomic_write_text(Path(target), tag * 50_000)
    else:
        with io.new_dir(Path(target)) as tmp:
            (tmp / "a.txt").write_text(tag)
            (tmp / "sub").mkdir()
            (tmp / "sub" / "b.txt").write_text(tag)
    print("done", flush=True)
""")

# The steps after which the target holds the new content (before them: the old one).
SWAPPED = {"file:replaced", "dir:exchanged", "dir:moved"}


def _content(kind: str, target: Path) -> str | None:
    """What a reader finds: the tag of the file or folder (a mix fails), None if missing."""
    if not target.exists():
        return None
    if kind == "dir":
        return _tag(target)
    text = target.read_text()
    assert text == text[:4] * 50_000, "a part-written file"
    return text[:4]


def _killed_at(kind: str, target: Path, stop: int, mode: str, tag: str) -> str | None:
    """Run the writer until its ``stop``-th step, check what a reader sees there, SIGKILL it
    (None: it finished before reaching that step)."""
    proc = subprocess.Popen([sys.executable, "-c", PAUSE, kind, str(target), str(stop), mode,
                             tag], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cli_env())
    try:
        step = proc.stdout.readline().strip()  # type: ignore[union-attr]
        assert step, proc.stderr.read()  # type: ignore[union-attr]
        if step == "done":
            assert proc.wait(timeout=60) == 0
            return None
        seen = _content(kind, target)  # while the writer is stopped there
        if step == "dir:aside":  # renamed aside, the new one not yet in: the one gap
            assert seen is None
        else:
            assert seen is not None
        proc.kill()  # SIGKILL: no cleanup of any kind runs
        assert proc.wait(timeout=60) == -signal.SIGKILL
        return step
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("kind", ["file", "dir"])
@pytest.mark.parametrize("mode", ["exchange", "rename"])
def test_writer_sigkilled_between_any_two_steps_leaves_old_or_new(tmp_path: Path, kind: str,
                                                                  mode: str) -> None:
    """Kill a real writer at each step boundary in turn, each kill on the result of the
    previous one: the target is always the last finished content or the new one, whole, and
    after the next writer's recovery (clean_orphans) no temp name is left."""
    target = tmp_path / "out"
    if kind == "file":
        io.atomic_write_text(target, "gen0" * 50_000)
    else:
        _folder(target, "gen0")
    current, gen, steps = "gen0", 0, []
    for _ in range(2):  # every step twice, each time on the content the last kill left
        stop = 1
        while True:
            gen += 1
            new = f"g{gen:03d}"
            step = _killed_at(kind, target, stop, mode, new)
            io.clean_orphans(target)  # what the next writer runs first
            got = _content(kind, target)
            if step is None:  # ran to the end: the new content, no step left to kill at
                assert got == new
                current = new
                break
            steps.append(step)
            assert got == (new if step in SWAPPED else current), (step, got)
            current = got
            assert sorted(p.name for p in tmp_path.iterdir()) == ["out"], step
            stop += 1
    want = {"file": ["file:created", "file:written", "file:synced", "file:replaced"],
            "dir": (["dir:built", "dir:exchanged"] if mode == "exchange" else
                    ["dir:built", "dir:named", "dir:aside", "dir:moved"])}[kind]
    if kind == "dir" and mode == "exchange" and not _renameat2_works(tmp_path):
        pytest.skip("this file system cannot exchange two folders (renameat2)")
    assert steps == want * 2


def _renameat2_works(tmp_path: Path) -> bool:
    a, b = tmp_path / "probe-a", tmp_path / "probe-b"
    a.mkdir()
    b.mkdir()
    try:
        return io._exchange(a, b)
    finally:
        a.rmdir()
        b.rmdir()


def test_write_errors_name_the_target_and_keep_the_old_file(tmp_path: Path) -> None:
    f = tmp_path / "x.pt"
    io.atomic_write_bytes(f, b"old")

    def full(out) -> None:  # noqa: ANN001
        out.write(b"part")
        raise OSError(28, "No space left on device")

    with pytest.raises(io.WriteError, match=rf"{f}: could not write it \(No space"):
        io.atomic_write(f, full)

    def missing_source(out) -> None:  # noqa: ANN001
        open(tmp_path / "gone", "rb")  # noqa: SIM115

    with pytest.raises(FileNotFoundError) as e:  # about another file: passed on as it is
        io.atomic_write(f, missing_source)
    assert not isinstance(e.value, io.WriteError)
    assert f.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["x.pt"]

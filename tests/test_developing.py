"""docs/DEVELOPING.md's worked examples, run as written: its toy backbone (<= 40 lines)
trains with every method, and its toy aligner (<= 60 lines) with every backbone, each
registered by the one registry line the page gives and nothing else."""

from __future__ import annotations

import ast
import json
import re
import sys
import types
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "DEVELOPING.md"
BACKBONE, ALIGNER = "Adding a backbone", "Adding an aligner"
MAX_LINES = {BACKBONE: 40, ALIGNER: 60}  # the bar for "easy to extend"


def section_blocks(heading: str) -> list[str]:
    """The ```python blocks under ``## heading``: the example's file, then its registry line."""
    text = PAGE.read_text()
    body = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", body, re.S)


def registry_entry(heading: str) -> tuple[str, str]:
    """The page's one registry line, parsed: (name, "module:Class")."""
    line = section_blocks(heading)[1].strip()
    name, target = ast.literal_eval("{" + line + "}").popitem()
    return name, target


def load_example(heading: str) -> str:
    """Run the page's code as the module its registry line names; returns that name."""
    name, target = registry_entry(heading)
    module_name = target.split(":")[0]
    module = types.ModuleType(module_name)
    sys.modules[module_name] = module  # where the registry will import it from
    exec(compile(section_blocks(heading)[0], f"{PAGE}:{heading}", "exec"), module.__dict__)
    return module_name


@pytest.fixture(scope="module")
def examples():  # noqa: ANN201
    names = [load_example(BACKBONE), load_example(ALIGNER)]
    yield
    for name in names:
        sys.modules.pop(name, None)


@pytest.fixture
def registered(examples, monkeypatch: pytest.MonkeyPatch) -> None:
    """The two registry lines, exactly as the page gives them."""
    from lmmrec.align.registry import ALIGNERS
    from lmmrec.backbones import REGISTRY

    monkeypatch.setitem(REGISTRY, *registry_entry(BACKBONE))
    monkeypatch.setitem(ALIGNERS, *registry_entry(ALIGNER))


@pytest.mark.parametrize("heading", [BACKBONE, ALIGNER])
def test_examples_are_short_and_register_with_one_line(heading: str) -> None:
    blocks = section_blocks(heading)
    assert len(blocks) == 2, "the example's file, then its one registry line"
    lines = blocks[0].rstrip("\n").splitlines()
    assert len(lines) <= MAX_LINES[heading], f"{heading}: {len(lines)} lines"
    assert len(blocks[1].strip().splitlines()) == 1
    name, target = registry_entry(heading)
    assert re.fullmatch(r"lmmrec\.(backbones|align)\.\w+:\w+", target), target


def _train(backbone: str, method: str, data: Path, motivations: Path, out: Path,
           sets: tuple[str, ...] = ()) -> dict:
    from lmmrec.train.config import resolve_config
    from lmmrec.train.trainer import fit

    base: dict[str, object] = {"method": method, "data": str(data)}
    if method != "base":
        base["motivations"] = str(motivations)
    cfg = resolve_config(backbone, [], ["train.max_epochs=2", "train.eval_every=1",
                                        "train.progress=false", "train.threads=1", *sets],
                         base=base)
    return fit(cfg, out)


def _loss_terms(run: Path) -> set[str]:
    lines = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    return {k for r in lines if "loss" in r for k in r["loss"]}


@pytest.mark.slow
def test_the_toy_backbone_trains_with_every_method(registered, beauty_dir: Path,
                                                   beauty_motivations: Path,
                                                   tmp_path: Path) -> None:
    from lmmrec.align.registry import ALIGNERS

    assert "pull" in ALIGNERS.names()
    for method in ALIGNERS.names():
        run = tmp_path / method
        result = _train("itemmean", method, beauty_dir, beauty_motivations, run,
                        ("backbone.mix=0.3",))
        assert 0 <= result["test"]["recall@20"] <= 1, method
        resolved = json.loads((run / "resolved.json").read_text())
        assert resolved["backbone"] == {"name": "itemmean", "dim": 32, "mix": 0.3}
        if method != "base":  # the aligner's own losses were trained
            assert _loss_terms(run) - {"bpr", "l2", "total"}, method


def test_a_misspelt_toy_setting_fails_naming_it(registered, beauty_dir: Path) -> None:
    from lmmrec.errors import ConfigError
    from lmmrec.train.config import resolve_config

    with pytest.raises((ConfigError, ValueError), match="mixx"):
        resolve_config("itemmean", [], ["backbone.mixx=0.3"], base={"data": str(beauty_dir)})


def test_the_toy_aligner_trains_with_every_backbone(registered, beauty_dir: Path,
                                                    beauty_motivations: Path,
                                                    tmp_path: Path) -> None:
    from lmmrec.backbones import REGISTRY

    for backbone in sorted(REGISTRY):
        run = tmp_path / backbone
        result = _train(backbone, "pull", beauty_dir, beauty_motivations, run,
                        ("align.weight=0.1",))
        assert 0 <= result["test"]["recall@20"] <= 1, backbone
        assert "pull" in _loss_terms(run), backbone
        assert json.loads((run / "resolved.json").read_text())["align"]["weight"] == 0.1

"""docs/DEVELOPING.md's worked examples, run as written: its toy backbone trains with every
method, and its toy aligner with every backbone."""

from __future__ import annotations

import json
import re
import sys
import types
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "DEVELOPING.md"


def section_code(heading: str) -> str:
    """The first ```python block under ``## heading``."""
    text = PAGE.read_text()
    body = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", body, re.S).group(1)


def load_example(name: str, heading: str) -> types.ModuleType:
    module = types.ModuleType(name)
    sys.modules[name] = module  # so the registry can import it by name
    exec(compile(section_code(heading), f"{PAGE}:{heading}", "exec"), module.__dict__)
    return module


@pytest.fixture(scope="module")
def examples():  # noqa: ANN201
    backbone = load_example("lmmrec_doc_backbone", "Adding a backbone")
    aligner = load_example("lmmrec_doc_aligner", "Adding an aligner")
    yield backbone, aligner
    sys.modules.pop("lmmrec_doc_backbone", None)
    sys.modules.pop("lmmrec_doc_aligner", None)


@pytest.fixture
def registered(examples, monkeypatch: pytest.MonkeyPatch) -> None:
    """The two registry lines the page asks for, pointing at the page's code."""
    from lmmrec.align.build import ALIGNERS
    from lmmrec.backbones import REGISTRY

    monkeypatch.setitem(REGISTRY, "itemmean", "lmmrec_doc_backbone:ItemMean")
    monkeypatch.setitem(ALIGNERS, "pull", "lmmrec_doc_aligner:PullAligner")


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
    from lmmrec.align.build import methods

    assert "pull" in methods()
    for method in methods():
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

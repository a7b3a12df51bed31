"""`lmmrec experiment pick`: the best variant of each method, on validation only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from lmmrec.errors import ConfigError
from lmmrec.experiment.grid import run_experiment
from lmmrec.experiment.pick import pick, to_markdown
from lmmrec.experiment.spec import experiment_from_dict

FAST = ["train.max_epochs=2", "train.eval_every=1", "train.progress=false",
        "train.threads=1", "eval.ks=[5,20]"]

VARIANTS = {
    "base": {"method": "base"},
    "base-lr1e-2": {"method": "base", "set": ["optim.lr=0.01"]},
    "con": {"method": "rlmrec-con"},
    "con-w4x": {"method": "rlmrec-con", "set": ["align.weight=0.04"],
                "by_dataset": {"beauty": ["align.temp=0.5"]}},
    # other text in: another baseline (family), picked on its own
    "con-phrases": {"method": "rlmrec-con", "set": ["align.text_input=phrases"]},
}


@pytest.fixture(scope="module")
def search(beauty_dir: Path, beauty_motivations: Path, tmp_path_factory) -> Path:
    """A real search grid on amazon-beauty-2023-mini: 2 backbones x 5 variants x 2 seeds."""
    tmp = tmp_path_factory.mktemp("search")
    variants = {k: {**v, "motivations": str(beauty_motivations)} for k, v in VARIANTS.items()}
    exp = experiment_from_dict({
        "out": str(tmp / "out"), "datasets": {"beauty": str(beauty_dir)},
        "backbones": ["mf", "lightgcn"], "variants": variants, "seeds": [1, 2],
        "common": list(FAST)}, tmp)
    res = run_experiment(exp)
    assert not res["failed"]
    return tmp / "out"


def _val_means(root: Path, metric: str) -> dict[str, float]:
    """variant -> mean over backbones of the mean over seeds, read straight from the runs."""
    per: dict[tuple[str, str], list[float]] = {}
    for m in root.glob("beauty/*/*/seed*/metrics.json"):
        bb, var = m.parts[-4], m.parts[-3]
        per.setdefault((var, bb), []).append(json.loads(m.read_text())["val"][metric])
    out: dict[str, list[float]] = {}
    for (var, _), vals in per.items():
        out.setdefault(var, []).append(sum(vals) / len(vals))
    return {v: sum(x) / len(x) for v, x in out.items()}


def _copy(root: Path, dest: Path) -> Path:
    """A copy of a finished experiment folder that points at its own runs."""
    import shutil

    shutil.copytree(root, dest)
    state = json.loads((dest / "experiment.json").read_text())
    for c in state["cells"]:
        c["dir"] = c["dir"].replace(str(root), str(dest))
    (dest / "experiment.json").write_text(json.dumps(state))
    return dest


def test_pick_takes_the_best_validation_mean_per_method(search: Path) -> None:
    res = pick(search, "recall@20")
    means = _val_means(search, "recall@20")
    picks = res["picks"]["beauty"]
    # families: method + text input, named by their shortest variant name
    assert set(picks) == {"base", "con", "con-phrases"}
    for family, names in {"base": ["base", "base-lr1e-2"], "con": ["con", "con-w4x"],
                          "con-phrases": ["con-phrases"]}.items():
        best = min(names, key=lambda n: (-round(means[n], 12), n))  # ties: first name
        assert picks[family]["variant"] == best
        assert picks[family]["val_recall@20"] == pytest.approx(means[best])
        assert [c["variant"] for c in picks[family]["candidates"]][0] == best
    assert picks["con-phrases"]["method"] == picks["con"]["method"] == "rlmrec-con"
    # the variant's own overrides plus its by_dataset ones for this dataset
    con_w4x = next(c for c in picks["con"]["candidates"] if c["variant"] == "con-w4x")
    assert con_w4x["set"] == ["align.weight=0.04", "align.temp=0.5"]


def test_pick_never_reads_test_metrics(search: Path, tmp_path: Path) -> None:
    """Scrambling every run's test metrics (and metrics it has no business with) changes
    nothing; changing validation metrics changes the pick."""
    copy = _copy(search, tmp_path / "copy")
    before = pick(copy)
    for m in copy.glob("beauty/*/*/seed*/metrics.json"):
        d = json.loads(m.read_text())
        d["test"] = {k: (1.0 if "lr1e-2" in str(m) or "con/" in str(m) else 0.0)
                     for k in d["test"]}
        m.write_text(json.dumps(d))
    assert pick(copy)["picks"] == before["picks"]

    loser = next(c["variant"] for c in before["picks"]["beauty"]["base"]["candidates"][1:])
    for m in copy.glob(f"beauty/*/{loser}/seed*/metrics.json"):
        d = json.loads(m.read_text())
        d["val"]["recall@20"] = 0.99
        m.write_text(json.dumps(d))
    assert pick(copy)["picks"]["beauty"]["base"]["variant"] == loser


def test_pick_leaves_out_families_with_unfinished_cells(search: Path, tmp_path: Path) -> None:
    """One unfinished cell holds back its family alone (a search may run some families
    first, `experiment run --variants`); nothing finished at all is refused."""
    copy = _copy(search, tmp_path / "copy")
    full = pick(copy)
    next(copy.glob("beauty/lightgcn/con-w4x/seed2/metrics.json")).unlink()
    res = pick(copy)
    assert set(res["picks"]["beauty"]) == {"base", "con-phrases"}
    assert res["picks"]["beauty"]["base"] == full["picks"]["beauty"]["base"]
    assert res["unfinished"] == {"beauty": {"con": ["con-w4x"]}}
    assert "Not picked (beauty, unfinished cells): con (con-w4x)" in to_markdown(res)
    with pytest.raises(ConfigError, match="--metric"):
        pick(search, "accuracy@20")
    for m in copy.glob("beauty/*/*/seed1/metrics.json"):
        m.unlink()
    with pytest.raises(ConfigError, match="no family of variants has all its cells"):
        pick(copy)
    with pytest.raises(ConfigError, match="--metric"):
        pick(search, "accuracy@20")


def test_cli_pick_prints_pasteable_overrides(search: Path, cli) -> None:
    r = cli("experiment", "pick", search, "--metric", "ndcg@20")
    assert r.code == 0, r.err
    hint = yaml.safe_load(r.out)
    written = json.loads((search / "picks.json").read_text())
    assert written["split"] == "val" and written["metric"] == "ndcg@20"
    for method, p in written["picks"]["beauty"].items():
        assert hint[method] == {"beauty": p["set"]}
    md = (search / "picks.md").read_text()
    assert "Test metrics were not read" in md and "**yes**" in md

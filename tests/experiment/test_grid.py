"""The experiment grid: resumable runs, up-front validation with key paths, shipped files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from lmmrec.errors import ConfigError
from lmmrec.experiment.grid import run_experiment
from lmmrec.experiment.plan import plan
from lmmrec.experiment.spec import experiment_from_dict, load_experiment
from lmmrec.experiment.stats import table
from lmmrec.train import trainer
from lmmrec.train.callbacks import StopAfter

FAST = ["train.max_epochs=2", "train.eval_every=1", "train.progress=false",
        "train.threads=1", "eval.ks=[5,20]"]


def spec(out: Path, data: Path, **extra: object) -> dict:
    d = {"out": str(out), "datasets": {"beauty": str(data)}, "backbones": ["mf"],
         "variants": {"base": {"method": "base"}}, "seeds": [1, 2], "common": list(FAST)}
    d.update(extra)
    return d


class Calls:
    """Wraps the real fit; records (cell folder, resume) of every call."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, interrupt_at: int | None = None):
        self.calls: list[tuple[str, bool]] = []
        self.real = trainer.fit
        self.interrupt_at = interrupt_at
        monkeypatch.setattr(trainer, "fit", self)

    def __call__(self, cfg, out_dir, *, resume=False, **kw):  # noqa: ANN001, ANN204
        self.calls.append((Path(out_dir).name, resume))
        if self.interrupt_at == len(self.calls):
            self.real(cfg, out_dir, resume=resume, callbacks=[StopAfter(1)])  # checkpoint, no metrics
            raise KeyboardInterrupt
        return self.real(cfg, out_dir, resume=resume, **kw)


def test_grid_resumes_after_interruption_without_rerunning_finished_cells(
        beauty, tmp_path, monkeypatch):
    exp = experiment_from_dict(spec(tmp_path / "out", beauty), tmp_path)
    cell1, cell2 = (tmp_path / "out" / "beauty" / "mf" / "base" / f"seed{s}" for s in (1, 2))

    first = Calls(monkeypatch, interrupt_at=2)  # killed during the second cell
    with pytest.raises(KeyboardInterrupt):
        run_experiment(exp)
    assert first.calls == [("seed1", False), ("seed2", False)]
    assert (cell1 / "metrics.json").exists()
    assert (cell2 / "checkpoint.pt").exists() and not (cell2 / "metrics.json").exists()
    state = json.loads((tmp_path / "out" / "experiment.json").read_text())
    assert [c["status"] for c in state["cells"]] == ["done", "interrupted"]
    mtime = (cell1 / "metrics.json").stat().st_mtime_ns

    second = Calls(monkeypatch)
    res = run_experiment(exp)
    assert second.calls == [("seed2", True)]  # finished cell skipped, the other resumed
    assert res["ran"] == 1 and res["done"] == 1 and res["partial"] == 1
    assert (cell1 / "metrics.json").stat().st_mtime_ns == mtime
    assert json.loads((cell2 / "metrics.json").read_text())["epochs"] == 2

    third = Calls(monkeypatch)
    assert run_experiment(exp)["ran"] == 0 and third.calls == []

    (cell1 / "metrics.json").unlink()
    (cell1 / "checkpoint.pt").unlink()
    fourth = Calls(monkeypatch)
    run_experiment(exp)
    assert fourth.calls == [("seed1", False)]  # nothing to resume from: fresh run

    # the table of the finished grid
    summary = table(tmp_path / "out", show=False)
    assert summary["reference"] == "base"
    (g,) = summary["groups"]
    assert g["seeds"] == [1, 2] and set(g["metrics"]) == {"recall@20", "ndcg@20"}
    secs = [json.loads((c / "metrics.json").read_text())["seconds_per_epoch"]
            for c in (cell1, cell2)]
    assert g["seconds_per_epoch"] == pytest.approx(sum(secs) / 2)
    assert g["time_ratio"] == pytest.approx(1.0)  # the reference itself
    md = (tmp_path / "out" / "results.md").read_text()
    assert "| s/epoch |" in md and f"| {g['seconds_per_epoch']:.3f} |" in md
    assert md.count("test metrics") == 1 and "val metrics" not in md

    # a search's file says `split: val`: its tables default to validation
    val = experiment_from_dict(spec(tmp_path / "out", beauty, split="val"), tmp_path)
    assert run_experiment(val)["ran"] == 0  # the same cells: nothing to run
    summary = table(tmp_path / "out", show=False)
    val_r20 = [json.loads((c / "metrics.json").read_text())["val"]["recall@20"]
               for c in (cell1, cell2)]
    assert summary["groups"][0]["metrics"]["recall@20"]["mean"] == pytest.approx(
        sum(val_r20) / 2)
    md = (tmp_path / "out" / "results.md").read_text()
    assert "val metrics" in md and "test metrics" not in md


def test_only_runs_some_datasets_and_keeps_the_others_cells(beauty, beauty_motivations,
                                                            tmp_path, monkeypatch):
    # "late" names an artifact still being extracted: the whole file is refused, but
    # --only beauty runs; once the artifact is there, --only late keeps beauty's cells.
    artifact = tmp_path / "late-artifact"
    d = spec(tmp_path / "out", beauty, seeds=[1])
    d["datasets"]["late"] = {"path": str(beauty), "motivations": str(artifact)}
    exp = experiment_from_dict(d, tmp_path)
    with pytest.raises(ConfigError, match="datasets.late.motivations"):
        plan(exp)
    with pytest.raises(ConfigError, match=r"--only\[0\]: 'nope'"):
        plan(exp, only=["nope"])
    calls = Calls(monkeypatch)
    assert run_experiment(exp, only=["beauty"])["ran"] == 1
    state = json.loads((tmp_path / "out" / "experiment.json").read_text())
    assert {c["dataset"] for c in state["cells"]} == {"beauty"}

    import shutil

    shutil.copytree(beauty_motivations, artifact)
    assert run_experiment(exp, only=["late"])["ran"] == 1
    state = json.loads((tmp_path / "out" / "experiment.json").read_text())
    assert sorted(c["dataset"] for c in state["cells"]) == ["beauty", "late"]
    assert [Path(c["dir"]).parts[-4] for c in state["cells"]] == ["late", "beauty"]
    assert len(calls.calls) == 2 and run_experiment(exp)["ran"] == 0  # all done


def test_variants_runs_only_matching_variants_and_keeps_the_others(beauty, tmp_path,
                                                                   monkeypatch):
    d = spec(tmp_path / "out", beauty, seeds=[1])
    d["variants"] = {"base": {"method": "base"},
                     "lr-a": {"method": "base", "set": ["optim.lr=0.002"]},
                     "lr-b": {"method": "base", "set": ["optim.lr=0.003"]}}
    exp = experiment_from_dict(d, tmp_path)
    with pytest.raises(ConfigError, match=r"--variants\[1\]: 'nope\*' matches no variant"):
        run_experiment(exp, variants=["base", "nope*"])
    calls = Calls(monkeypatch)
    res = run_experiment(exp, variants=["lr-*"])
    assert res["ran"] == 2 and res["cells"] == 2
    assert [c for c, _ in calls.calls] == ["seed1", "seed1"]
    for v, done in (("lr-a", True), ("lr-b", True), ("base", False)):
        assert (tmp_path / "out" / "beauty" / "mf" / v / "seed1" / "metrics.json").exists() is done
    state = json.loads((tmp_path / "out" / "experiment.json").read_text())
    assert {c["variant"]: c["status"] for c in state["cells"]} == {
        "base": "new", "lr-a": "done", "lr-b": "done"}  # the plan stays whole
    assert run_experiment(exp)["ran"] == 1 and len(calls.calls) == 3  # base alone is left


def _no_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*a, **k):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("fit must not be called for a malformed experiment")

    monkeypatch.setattr(trainer, "fit", fail)


BAD = [
    ({"variants": {"base": {}, "v": {"set": ["optim.lr0.01"]}}}, "variants.v.set[0]"),
    ({"variants": {"base": {}, "v": {"set": ["train.patience=2", "optim.lr=-1"]}}},
     "variants.v.set[1]"),
    ({"variants": {"base": {}, "v": {"set": ["optim.bogus=1"]}}}, "variants.v.set[0]"),
    ({"variants": {"base": {}, "v": {"sett": ["optim.lr=1"]}}}, "variants.v.sett"),
    ({"variants": {"v": {"method": "nope"}}}, "variants.v.method"),
    ({"backbones": ["mf", "no-such-backbone"]}, "backbones[1]"),
    ({"common": ["train.max_epochs=0"]}, "common[0]"),
    ({"seeds": [1, 1]}, "seeds"),
    ({"reference": "missing"}, "reference"),
    ({"noise": {"dataset": "beauty", "levels": [0, 5]}}, "noise.levels[1]"),
    ({"noise": {"dataset": "other"}}, "noise.dataset"),
    ({"datasets": {"beauty": {"path": "/nonexistent/prepared"}}}, "datasets.beauty.path"),
    ({"variants": {"base": {}, "lm": {"method": "lmmrec"}}}, "datasets.beauty.motivations"),
]


@pytest.mark.parametrize(("change", "where"), BAD, ids=[w for _, w in BAD])
def test_malformed_experiment_fails_with_key_path_before_any_run(
        beauty, tmp_path, monkeypatch, cli, change, where):
    _no_fit(monkeypatch)
    d = spec(tmp_path / "out", beauty)
    d.update(change)
    f = tmp_path / "exp.yaml"
    f.write_text(yaml.safe_dump(d))
    code, _, err = cli("experiment", "run", f)
    assert code == 2, err
    assert f"{where}:" in err, err
    assert not (tmp_path / "out").exists()  # nothing started, nothing written


def test_cell_with_a_run_of_another_config_is_refused(beauty, tmp_path, monkeypatch):
    d = spec(tmp_path / "out", beauty, seeds=[1])
    run_experiment(experiment_from_dict(d, tmp_path))
    d["common"] = [*FAST, "optim.lr=0.05"]
    _no_fit(monkeypatch)
    with pytest.raises(ConfigError, match=r"seed1: holds a run of a different config.*optim\.lr"):
        run_experiment(experiment_from_dict(d, tmp_path))



def test_cell_whose_config_spelt_out_defaults_is_kept(beauty, tmp_path, monkeypatch):
    """A run whose config.json listed keys at their defaults (presets used to) is the same
    run as one that leaves them out: it is reused, not refused."""
    d = spec(tmp_path / "out", beauty, seeds=[1])
    run_experiment(experiment_from_dict(d, tmp_path))
    cell = next((tmp_path / "out").rglob("seed1"))
    stored = json.loads((cell / "config.json").read_text())
    stored["backbone"] = {**stored["backbone"], "dim": 32}  # the default, spelt out
    (cell / "config.json").write_text(json.dumps(stored))
    _no_fit(monkeypatch)
    run_experiment(experiment_from_dict(d, tmp_path))  # no ConfigError
    stored["backbone"]["dim"] = 16  # a real difference is still refused
    (cell / "config.json").write_text(json.dumps(stored))
    with pytest.raises(ConfigError, match=r"seed1: holds a run of a different config.*backbone\.dim"):
        run_experiment(experiment_from_dict(d, tmp_path))

@pytest.mark.slow
def test_noise_study_runs_levels_and_writes_plot_and_table(beauty, tmp_path, cli):
    d = spec(tmp_path / "out", beauty, seeds=[1],
             noise={"dataset": "beauty", "levels": [0, 0.2]})
    d["common"] = [*FAST, "train.max_epochs=1"]
    f = tmp_path / "noise.yaml"
    f.write_text(yaml.safe_dump(d))
    code, out, err = cli("experiment", "noise", f, "--jobs", "2")  # 2 cells at once
    assert code == 0, err
    root = tmp_path / "out" / "noise"
    assert (root / "noise-recall20.png").stat().st_size > 1000
    summary = json.loads((root / "results.json").read_text())
    assert sorted(r["level"] for r in summary["rows"]) == [0.0, 0.2]
    noised = json.loads((tmp_path / "out" / "_data" / "beauty-noise20" / "manifest.json")
                        .read_text())["noise"]
    assert noised["share"] == 0.2 and noised["n_added"] == round(0.2 * noised["n_train_before"])
    cfg = json.loads((root / "beauty-noise20" / "mf" / "base" / "seed1" / "config.json")
                     .read_text())
    assert cfg["data"].endswith("beauty-noise20")
    assert "| mf | base |" in (root / "results.md").read_text()


SHIPPED = Path(__file__).resolve().parents[2] / "src" / "lmmrec" / "configs" / "experiments"


@pytest.mark.parametrize(("name", "n_cells"), [("main", 3 * 2 * 7 * 5),
                                               ("ablations", 2 * 8 * 5), ("noise", 3 * 3 * 6),
                                               ("noise-text", 3 + 2 * 3 * 6),
                                               ("tune", 3 * 2 * 5 * 2),
                                               ("tune-align", 3 * 21 * 3),
                                               ("tune-cost", 2 * 10 * 3),
                                               ("text-value", 2 * 7 * 10),
                                               ("text-value-25", 17 * 5),
                                               ("budget", 7 * 5),
                                               ("text-levers", 11 * 5),
                                               ("noise-mi", 4 * 5 * 6),
                                               ("noise-text-mi", 5 + 3 * 5 * 6)])
def test_shipped_experiments_parse(name, n_cells, tmp_path):
    exp = load_experiment(SHIPPED / f"{name}.yaml", base_dir=tmp_path)
    s = exp.spec
    assert exp.out == (tmp_path / s.out).resolve()
    for ds, d in s.datasets.items():
        # the training-setting search runs base cells only: no text
        # v2 where its release covers the training reviews and the file was re-run on it
        v2 = name in ("text-value", "text-value-25", "budget") or (
            name in ("main", "tune-align") and ds == "amazon-mi-2014")
        release = "motivations-v2" if v2 else "motivations"
        assert d.motivations == (None if name == "tune" else f"releases/{release}/{ds}")
    if name == "text-levers":  # the mpnet copy of the release (its header's commands)
        assert s.variants["phrases-mpnet"].motivations == "work/mpnet/amazon-mi-2014-v1"
    p = plan(exp, check_paths=False)
    assert len({c.dir for c in p.cells}) == n_cells
    # searches report validation by default, so their closing table never shows test
    assert s.split == ("val" if name.startswith("tune") else "test")


def test_text_noise_plan_shares_base_runs_across_levels(beauty, tmp_path):
    """base ignores text: under text-only noise its cells are one run per seed."""
    d = spec(tmp_path / "out", beauty, seeds=[1],
             noise={"dataset": "beauty", "kind": "text", "levels": [0, 0.1, 0.2]})
    p = plan(experiment_from_dict(d, tmp_path))
    noise_cells = [c for c in p.cells if c.source == "noise"]
    assert [c.level for c in noise_cells] == [0, 0.1, 0.2]
    assert len({c.dir for c in noise_cells}) == 1 and p.jobs == []


def test_text_noise_plan_for_aligned_methods(beauty, tmp_path, monkeypatch):
    """Aligned cells read a noised artifact per level; base cells get no artifact at all."""
    art = tmp_path / "releases" / "motivations" / "beauty"
    art.mkdir(parents=True)
    (art / "manifest.json").write_text("{}")
    d = spec("out", beauty, seeds=[1],
             datasets={"beauty": {"path": str(beauty), "motivations": str(art)}},
             variants={"base": {}, "con": {"method": "rlmrec-con"}},
             noise={"dataset": "beauty", "kind": "both", "levels": [0, 0.1]})
    p = plan(experiment_from_dict(d, tmp_path))
    assert sorted(j.kind for j in p.jobs) == ["interactions", "text"]
    by = {(c.variant, c.level): c.config for c in p.cells if c.source == "noise"}
    assert by[("base", 0.1)].motivations is None
    assert by[("con", 0)].motivations == str(art)
    text_job = next(j for j in p.jobs if j.kind == "text")
    assert by[("con", 0.1)].motivations == str(text_job.dst) and text_job.src == art
    assert by[("con", 0.1)].data.endswith("beauty-noise10")


def test_cell_whose_run_used_other_defaults_is_refused(beauty, beauty_motivations, tmp_path,
                                                        monkeypatch):
    """Same experiment file, but a default of the aligner changed since the cell ran."""
    d = spec(tmp_path / "out", beauty, seeds=[1], variants={
        "lmmrec": {"method": "lmmrec", "motivations": str(beauty_motivations)}})
    run_experiment(experiment_from_dict(d, tmp_path))
    cell = tmp_path / "out" / "beauty" / "mf" / "lmmrec" / "seed1"
    stored = json.loads((cell / "resolved.json").read_text())
    assert stored["align"]["every"] == 8 and stored["backbone"]["name"] == "mf"
    stored["align"]["every"] = 1  # as if the run predated the current default
    (cell / "resolved.json").write_text(json.dumps(stored))
    _no_fit(monkeypatch)
    with pytest.raises(ConfigError, match=r"seed1: holds a run made with other defaults "
                                          r"or another motivation artifact "
                                          r"\(differs at align\.every\)"):
        run_experiment(experiment_from_dict(d, tmp_path))
    # a setting added since the run (absent from its resolved.json) at its default is no
    # difference: the run is reused
    stored["align"]["every"] = 8
    del stored["align"]["drop_verdicts"]
    (cell / "resolved.json").write_text(json.dumps(stored))
    assert run_experiment(experiment_from_dict(d, tmp_path))["ran"] == 0
    # ... but a cell that sets it is another config
    d["variants"]["lmmrec"]["set"] = ["align.drop_verdicts=true"]
    with pytest.raises(ConfigError, match=r"seed1: holds a run of a different config"):
        run_experiment(experiment_from_dict(d, tmp_path))


def test_cell_whose_artifact_changed_is_refused(beauty, beauty_motivations, tmp_path,
                                                monkeypatch):
    """Same file, same settings, but the motivation artifact at that path was re-exported
    with other contents since the cell ran: the cell is not silently reused."""
    import shutil

    import pandas as pd

    art = tmp_path / "art"
    shutil.copytree(beauty_motivations, art)
    d = spec(tmp_path / "out", beauty, seeds=[1], variants={
        "lmmrec": {"method": "lmmrec", "motivations": str(art)}})
    run_experiment(experiment_from_dict(d, tmp_path))
    cell = tmp_path / "out" / "beauty" / "mf" / "lmmrec" / "seed1"
    assert len(json.loads((cell / "resolved.json").read_text())["motivations_fingerprint"]) == 16
    _no_fit(monkeypatch)
    assert run_experiment(experiment_from_dict(d, tmp_path))["ran"] == 0  # unchanged: reused
    df = pd.read_parquet(art / "reviews.parquet")
    df.iloc[:-1].to_parquet(art / "reviews.parquet", index=False)  # one review fewer
    with pytest.raises(ConfigError, match=r"differs at motivations_fingerprint"):
        run_experiment(experiment_from_dict(d, tmp_path))
    # a run from before fingerprints (no key) is still reused
    stored = json.loads((cell / "resolved.json").read_text())
    del stored["motivations_fingerprint"]
    (cell / "resolved.json").write_text(json.dumps(stored))
    assert run_experiment(experiment_from_dict(d, tmp_path))["ran"] == 0


def _scores(out: Path) -> dict[str, dict]:
    return {str(m.parent.relative_to(out)): {k: v for k, v in json.loads(m.read_text()).items()
                                             if k in ("val", "test", "best_epoch", "epochs")}
            for m in sorted(out.rglob("metrics.json"))}


@pytest.mark.slow
def test_parallel_jobs_give_the_serial_results_and_resume(beauty, tmp_path):
    serial = experiment_from_dict(spec(tmp_path / "serial", beauty, seeds=[1, 2, 3]), tmp_path)
    assert run_experiment(serial)["ran"] == 3
    par = experiment_from_dict(spec(tmp_path / "par", beauty, seeds=[1, 2, 3]), tmp_path)
    cells = plan(par).cells
    trainer.fit(cells[0].config, cells[0].dir)  # finished before: skipped
    trainer.fit(cells[1].config, cells[1].dir, callbacks=[StopAfter(1)])  # killed: resumes
    mtime = (cells[0].dir / "metrics.json").stat().st_mtime_ns

    res = run_experiment(par, jobs=2)
    assert (res["done"], res["partial"], res["new"], res["ran"]) == (1, 1, 1, 2)
    assert (cells[0].dir / "metrics.json").stat().st_mtime_ns == mtime
    # one thread per cell either way (FAST sets train.threads=1): the very same numbers
    assert _scores(tmp_path / "par") == _scores(tmp_path / "serial")
    assert len(_scores(tmp_path / "par")) == 3
    state = json.loads((tmp_path / "par" / "experiment.json").read_text())
    assert [c["status"] for c in state["cells"]] == ["done"] * 3
    assert run_experiment(par, jobs=2)["ran"] == 0


@pytest.mark.slow
def test_parallel_jobs_record_a_failed_cell_and_go_on_or_raise(beauty, tmp_path):
    d = spec(tmp_path / "out", beauty, seeds=[1])
    d["variants"]["broken"] = {"method": "base", "set": ["train.device=cuda:12345"]}
    d["variants"]["late"] = {"method": "base", "set": ["train.batch_size=2048"]}
    res = run_experiment(experiment_from_dict(d, tmp_path), jobs=2, keep_going=True)
    assert res["ran"] == 2 and res["failed"] == ["beauty/mf/broken/seed1"]
    state = json.loads((tmp_path / "out" / "experiment.json").read_text())
    by = {Path(c["dir"]).parts[-2]: c for c in state["cells"]}
    assert by["broken"]["status"] == "failed" and "cuda:12345" in by["broken"]["error"]
    assert by["base"]["status"] == by["late"]["status"] == "done"

    d["out"] = str(tmp_path / "out2")  # without --keep-going: raised once the others stop
    with pytest.raises(ConfigError, match="cuda:12345"):
        run_experiment(experiment_from_dict(d, tmp_path), jobs=2)
    state = json.loads((tmp_path / "out2" / "experiment.json").read_text())
    by = {Path(c["dir"]).parts[-2]: c for c in state["cells"]}
    assert by["broken"]["status"] == "failed"
    assert {by["base"]["status"], by["late"]["status"]} <= {"done", "new"}
    with pytest.raises(ConfigError, match="--jobs 0"):
        run_experiment(experiment_from_dict(d, tmp_path), jobs=0)

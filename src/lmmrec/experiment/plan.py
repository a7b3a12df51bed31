"""An experiment's plan: every cell's RunConfig, validated before any run starts.

Each cell is a normal run folder: OUT/<dataset>/<backbone>/<variant>/seed<k>/ (noise study
cells above level 0: OUT/noise/<dataset>-noise<pct>/...). A cell's config layers: backbone
preset < {data, method, motivations} < common < datasets.<d>.set < variants.<v>.set <
variants.<v>.by_dataset.<d> < train.seed. Base cells get no motivations (they ignore text).
Every problem is reported with the key path of the value that caused it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lmmrec.data import catalog
from lmmrec.errors import ConfigError, LmmrecError
from lmmrec.experiment.spec import (
    DATA_DIR,
    MOTIVATIONS_DIR,
    NOISE_DIR,
    DatasetSpec,
    Experiment,
    NoiseSection,
)
from lmmrec.experiment.stale import check_stored, dump_config
from lmmrec.layout import ARTIFACT, DATASET
from lmmrec.train.config import resolve_config


@dataclass
class Cell:
    """One run of the grid."""

    dataset: str  # label (a noised dataset: "<name>-noise5")
    backbone: str
    variant: str
    seed: int
    dir: Path
    config: Any  # RunConfig
    level: float | None = None  # noise share (noise study cells only)
    source: str = "grid"  # grid | noise
    base: str = ""  # the experiment's dataset name (a noised label's clean dataset)

    @property
    def label(self) -> str:
        return f"{self.dataset}/{self.backbone}/{self.variant}/seed{self.seed}"

    def record(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "backbone": self.backbone, "variant": self.variant,
                "seed": self.seed, "dir": str(self.dir), "level": self.level,
                "source": self.source, "base": self.base or self.dataset}


@dataclass
class NoiseJob:
    """A noised copy to build before the noise cells that read it run."""

    kind: Literal["interactions", "text"]
    level: float
    src: Path  # the clean prepared dataset / motivation artifact
    dst: Path
    seed: int


@dataclass
class Plan:
    exp: Experiment
    cells: list[Cell] = field(default_factory=list)  # grid cells, then noise cells
    jobs: list[NoiseJob] = field(default_factory=list)

    def runs(self) -> list[Cell]:
        """The cells to run, one per run folder, in order."""
        out: dict[Path, Cell] = {}
        for c in self.cells:
            out.setdefault(c.dir, c)
        return list(out.values())

    def add_job(self, job: NoiseJob) -> None:
        if all(j.dst != job.dst for j in self.jobs):
            self.jobs.append(job)


def plan(exp: Experiment, *, grid: bool = True, noise: bool = True,
         check_paths: bool = True, only: list[str] | None = None) -> Plan:
    """Every cell with its resolved RunConfig. Raises one ConfigError listing every problem
    (with key paths) before anything runs. ``only``: these datasets alone (the others are
    neither checked nor planned, e.g. while their motivations are still being extracted)."""
    errors: list[str] = []
    s = exp.spec
    for i, name in enumerate(only or []):
        if name not in s.datasets:
            errors.append(f"--only[{i}]: {name!r} is not in datasets ({', '.join(s.datasets)})")
    chosen = [d for d in s.datasets if only is None or d in only]
    _check_inputs(exp, chosen, check_paths, errors)
    if errors:
        raise ConfigError(_joined(errors, exp))

    b = _Builder(exp, Plan(exp), errors)
    if grid:
        _plan_grid(b, chosen)
    if noise and s.noise is not None and s.noise.dataset in chosen:
        _plan_noise(b, s.noise)
    errors.extend(sorted(b.motivation_problems))
    if check_paths and not errors:
        for cell in b.result.runs():
            check_stored(cell, errors)
    if errors:
        raise ConfigError(_joined(errors, exp))
    return b.result


def _check_inputs(exp: Experiment, chosen: list[str], check_paths: bool,
                  errors: list[str]) -> None:
    """Every backbone resolves; the chosen datasets and their artifacts exist."""
    s = exp.spec
    for i, b in enumerate(s.backbones + (s.noise.backbones or [] if s.noise else [])):
        where = (f"backbones[{i}]" if i < len(s.backbones)
                 else f"noise.backbones[{i - len(s.backbones)}]")
        _try(errors, where, lambda b=b: _resolve(b, {}, []))
    if check_paths:
        for name in chosen:
            _check_dataset(exp, name, s.datasets[name], errors)


@dataclass
class _Builder:
    """The plan being built, the problems found so far, and the run folder of each config."""

    exp: Experiment
    result: Plan
    errors: list[str]
    by_config: dict[str, Path] = field(default_factory=dict)
    motivation_problems: set[str] = field(default_factory=set)

    def add(self, ds_label: str, base_name: str, backbone: str, variant: str, seed: int,
            data: Path, motivations: Path | None, mot_where: str, dir_: Path,
            level: float | None = None, source: str = "grid") -> None:
        v = self.exp.spec.variants[variant]
        if v.method == "base":
            motivations = None  # base ignores text: keep its cells independent of artifacts
        elif motivations is None:
            self.motivation_problems.add(
                f"{mot_where}: method {v.method!r} (variant {variant!r}) needs a motivation "
                f"artifact (set datasets.{base_name}.motivations or "
                f"variants.{variant}.motivations)")
            return
        cfg = _cell_config(self.exp, base_name, backbone, variant, seed, data, motivations,
                           self.errors)
        if cfg is None:
            return
        # identical configs (e.g. base under text-only noise) share one run folder
        key = json.dumps(dump_config(cfg), sort_keys=True)
        dir_ = self.by_config.setdefault(key, dir_)
        self.result.cells.append(Cell(ds_label, backbone, variant, seed, dir_, cfg, level,
                                      source, base_name))


def _plan_grid(b: _Builder, chosen: list[str]) -> None:
    exp, s = b.exp, b.exp.spec
    for ds_name in chosen:
        for bb in s.backbones:
            for vname in s.variants:
                mot, where = exp.motivations_for(ds_name, vname)
                for seed in s.seeds:
                    b.add(ds_name, ds_name, bb, vname, seed, exp.data_dir(ds_name), mot,
                          where, cell_dir(exp.out, ds_name, bb, vname, seed))


def _plan_noise(b: _Builder, n: NoiseSection) -> None:
    """The noise study's cells at each level, and the noised copies they read."""
    exp, s = b.exp, b.exp.spec
    name = n.dataset
    clean = exp.data_dir(name)
    for level in n.levels:
        label = noise_label(name, level)
        data = clean
        if level > 0 and n.kind in ("interactions", "both"):
            data = exp.out / DATA_DIR / label
            b.result.add_job(NoiseJob("interactions", level, clean, data, n.seed))
        root = exp.out if level == 0 else exp.out / NOISE_DIR
        ds_label = name if level == 0 else label
        for vname in n.methods or list(s.variants):
            mot, where = exp.motivations_for(name, vname)
            if (level > 0 and n.kind in ("text", "both") and mot is not None
                    and s.variants[vname].method != "base"):
                noised = exp.out / MOTIVATIONS_DIR / f"{label}-{mot.name}-{_slug(mot)}"
                b.result.add_job(NoiseJob("text", level, mot, noised, n.seed))
                mot = noised
            for bb in n.backbones or s.backbones:
                for seed in n.seeds or s.seeds:
                    b.add(ds_label, name, bb, vname, seed, data, mot, where,
                          cell_dir(root, ds_label, bb, vname, seed), level, "noise")


def _slug(path: Path) -> str:
    return hashlib.sha1(str(path).encode()).hexdigest()[:8]


def noise_label(dataset: str, level: float) -> str:
    return f"{dataset}-noise{level * 100:g}"


def cell_dir(root: Path, dataset: str, backbone: str, variant: str, seed: int) -> Path:
    return root / dataset / backbone / variant / f"seed{seed}"


def _joined(errors: list[str], exp: Experiment | None = None) -> str:
    uniq = list(dict.fromkeys(errors))
    where = f"{exp.file}: " if exp is not None and exp.file is not None else ""
    return f"{where}invalid experiment:\n  " + "\n  ".join(uniq)


def _try(errors: list[str], where: str, fn: Any) -> Any:
    try:
        return fn()
    except LmmrecError as e:
        errors.append(f"{where}: {_short(e)}")
        return None


def _short(e: Exception) -> str:
    return re.sub(r"^[^:]*: invalid configuration: ", "", str(e))


def _resolve(backbone: str, base: dict[str, Any], overrides: list[str]) -> Any:
    return resolve_config(backbone, overrides=overrides, base=base)


def _cell_config(exp: Experiment, dataset: str, backbone: str, variant: str, seed: int,
                 data: Path, motivations: Path | None, errors: list[str]) -> Any:
    """The cell's RunConfig; on failure, the key path of the first layer that breaks it."""
    s = exp.spec
    v = s.variants[variant]
    base: dict[str, Any] = {"data": str(data), "method": v.method}
    if motivations is not None:
        base["motivations"] = str(motivations)
    named = ([(f"common[{i}]", o) for i, o in enumerate(s.common)]
             + [(f"datasets.{dataset}.set[{i}]", o)
                for i, o in enumerate(s.datasets[dataset].set)]
             + [(f"variants.{variant}.set[{i}]", o) for i, o in enumerate(v.set)]
             + [(f"variants.{variant}.by_dataset.{dataset}[{i}]", o)
                for i, o in enumerate(v.by_dataset.get(dataset, []))])
    layers = [o for _, o in named]
    try:
        return _resolve(backbone, base, [*layers, f"train.seed={seed}"])
    except LmmrecError as e:
        final = _short(e)
    # find the culprit: the first layer whose addition breaks the config
    plain = {"data": str(data)}
    steps: list[tuple[str, dict[str, Any], list[str]]] = [("backbones", plain, [])]
    n_common = len(s.common)
    steps += [(named[i][0], plain, layers[:i + 1]) for i in range(n_common)]
    steps.append((f"variants.{variant}.method", base, layers[:n_common]))
    steps += [(named[i][0], base, layers[:i + 1]) for i in range(n_common, len(named))]
    for where, b, ov in steps:
        try:
            _resolve(backbone, b, ov)
        except LmmrecError as e:
            errors.append(f"{where}: {_short(e)}")
            return None
    errors.append(f"seeds ({seed}): {final}")
    return None


def _check_dataset(exp: Experiment, name: str, d: DatasetSpec, errors: list[str]) -> None:
    if d.path is not None:
        p = exp.path(d.path)
        if not (p / DATASET.manifest).exists() or not (p / DATASET.interactions).exists():
            errors.append(f"datasets.{name}.path: {p} is not a prepared dataset folder "
                          "(make one with `lmmrec data prepare`, or use prepare: {...})")
    elif not (exp.out / DATA_DIR / name / DATASET.manifest).exists():
        src = d.prepare.source if d.prepare and d.prepare.source else name
        try:
            catalog.resolve(src)
        except LmmrecError as e:
            errors.append(f"datasets.{name}.prepare.source: {e}")
    if d.motivations is not None:
        m = exp.path(d.motivations.replace("{dataset}", name))
        if not (m / ARTIFACT.manifest).exists():
            errors.append(f"datasets.{name}.motivations: {m} is not a motivation artifact "
                          "(no manifest.json)")
    for vname, v in exp.spec.variants.items():
        if v.motivations is not None and v.method != "base":
            m = exp.path(v.motivations.replace("{dataset}", name))
            if not (m / ARTIFACT.manifest).exists():
                errors.append(f"variants.{vname}.motivations: {m} is not a motivation "
                              f"artifact (no manifest.json) for dataset {name!r}")

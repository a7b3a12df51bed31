"""The experiment file and its plan: every cell's RunConfig, validated before any run starts.

An experiment file (YAML)::

    out: runs/experiments/main          # relative paths: from the current directory
    datasets:                           # name -> a prepared folder, or raw name + prepare args
      amazon-mi-2014:
        prepare: {}                     # `lmmrec data prepare amazon-mi-2014` into OUT/_data/
        motivations: releases/motivations/amazon-mi-2014
        set: [train.batch_size=2048]    # optional overrides for this dataset's cells
      mine: path/to/prepared            # a string: an already prepared folder
    backbones: [lightgcn, simgcl]       # presets (configs/backbones) or registered names
    variants:
      base: {method: base}
      lmmrec-no-mcs: {method: lmmrec, set: [align.mcs=false]}
      rlmrec-con:                       # motivations: may override the dataset's ({dataset})
        method: rlmrec-con
        by_dataset: {mine: [align.temp=0.1]}   # overrides for one dataset only
    seeds: [1, 2, 3, 4, 5]              # each becomes train.seed
    common: [train.progress=false]      # overrides for every cell
    reference: base                     # the variant others are compared with
    metrics: [recall@20, ndcg@20]       # what `experiment table` reports by default
    split: test                         # or val (searches): the split tables report
    noise: {dataset: amazon-mi-2014}    # optional: the noise-robustness study

Each cell is a normal run folder: OUT/<dataset>/<backbone>/<variant>/seed<k>/ (noise study
cells above level 0: OUT/noise/<dataset>-noise<pct>/...). A cell's config layers: backbone
preset < {data, method, motivations} < common < datasets.<d>.set < variants.<v>.set <
variants.<v>.by_dataset.<d> < train.seed. Base cells get no motivations (they ignore text). Every problem is reported with the key path of the value that caused it
(``variants.lmmrec.set[0]: ...``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from lmmrec.config import Strict, parse_override, read_yaml
from lmmrec.errors import ConfigError, LmmrecError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
DATA_DIR, MOTIVATIONS_DIR, NOISE_DIR = "_data", "_motivations", "noise"
STATE_FILE, SPEC_FILE = "experiment.json", "experiment.yaml"
DEFAULT_LEVELS = [0.0, 0.05, 0.10, 0.15, 0.20, 0.25]
# Keys of a stored config.json that do not change results (a resumed cell may differ there).
VOLATILE_KEYS = {("train", "progress"), ("train", "threads")}


def _check_name(kind: str, name: str) -> str:
    if not NAME_RE.match(name):
        raise ValueError(f"{kind} name {name!r} must match {NAME_RE.pattern} "
                         "(it becomes a folder name)")
    return name


class PrepareArgs(Strict):
    """Arguments of `lmmrec data prepare` (None: the dataset's catalog default)."""

    source: str | None = None  # a known name or a raw path; default: the dataset's name
    format: str | None = None
    kcore: int | None = Field(None, ge=0)
    split: str | None = None
    seed: int | None = None
    rating_threshold: float | None = None
    columns: str | None = None


class DatasetSpec(Strict):
    path: str | None = None  # an already prepared folder
    prepare: PrepareArgs | None = None  # or: prepared into OUT/_data/<name> on first run
    motivations: str | None = None  # motivation artifact folder (aligned methods)
    set: list[str] = Field(default_factory=list)  # overrides for every cell of this dataset

    @field_validator("set")
    @classmethod
    def _overrides(cls, v: list[str]) -> list[str]:
        return _check_overrides(v)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        if v is None:
            return {"prepare": {}}
        if isinstance(v, str):
            return {"path": v}
        return v

    @model_validator(mode="after")
    def _one_source(self) -> DatasetSpec:
        if self.path is not None and self.prepare is not None:
            raise ValueError("give either path (a prepared folder) or prepare (raw data), "
                             "not both")
        if self.path is None and self.prepare is None:
            self.prepare = PrepareArgs()
        return self


class VariantSpec(Strict):
    method: str = "base"
    motivations: str | None = None  # overrides the dataset's; "{dataset}" is substituted
    set: list[str] = Field(default_factory=list)  # key=value overrides
    by_dataset: dict[str, list[str]] = Field(default_factory=dict)  # more, for one dataset

    @field_validator("method")
    @classmethod
    def _method(cls, v: str) -> str:
        from lmmrec.align.registry import ALIGNERS

        return ALIGNERS.check(v)

    @field_validator("set")
    @classmethod
    def _overrides(cls, v: list[str]) -> list[str]:
        return _check_overrides(v)

    @field_validator("by_dataset")
    @classmethod
    def _by_dataset(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, items in v.items():
            try:
                _check_overrides(items)
            except ValueError as e:
                raise ValueError(f"@{name}{str(e)[1:]}") from None
        return v


def _check_overrides(v: list[str]) -> list[str]:
    for i, item in enumerate(v):
        try:
            parse_override(item)
        except ConfigError as e:
            raise ValueError(f"@[{i}] {e}") from None
    return v


class NoiseSection(Strict):
    """The noise-robustness study: the same cells on noised copies of one dataset."""

    dataset: str  # a key of `datasets`
    kind: Literal["interactions", "text", "both"] = "interactions"
    levels: list[float] = Field(default_factory=lambda: list(DEFAULT_LEVELS), min_length=1)
    methods: list[str] | None = None  # variant names; default: every variant
    backbones: list[str] | None = None  # default: the experiment's backbones
    seeds: list[int] | None = None  # default: the experiment's seeds
    metric: str = "recall@20"
    seed: int = 2024  # of the noise itself (same seed: identical noised data)

    @field_validator("levels")
    @classmethod
    def _levels(cls, v: list[float]) -> list[float]:
        for i, p in enumerate(v):
            if not 0 <= p < 1:
                raise ValueError(f"@[{i}] level {p} must be a share in [0, 1) "
                                 "(write 0.05 for 5 %)")
        if len(set(v)) != len(v):
            raise ValueError("levels must be distinct")
        return sorted(v)


class ExperimentFile(Strict):
    out: str
    datasets: dict[str, DatasetSpec] = Field(min_length=1)
    backbones: list[str] = Field(min_length=1)
    variants: dict[str, VariantSpec] = Field(min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [2023], min_length=1)
    common: list[str] = Field(default_factory=list)
    reference: str | None = None
    metrics: list[str] = Field(default_factory=lambda: ["recall@20", "ndcg@20"], min_length=1)
    # the split `experiment run` / `table` report by default: a search says val, so that its
    # closing table never puts test numbers in front of whoever picks
    split: Literal["test", "val"] = "test"
    noise: NoiseSection | None = None

    @field_validator("datasets")
    @classmethod
    def _dataset_names(cls, v: dict[str, DatasetSpec]) -> dict[str, DatasetSpec]:
        for name in v:
            _check_name("dataset", name)
        return v

    @field_validator("variants")
    @classmethod
    def _variant_names(cls, v: dict[str, VariantSpec]) -> dict[str, VariantSpec]:
        for name in v:
            _check_name("variant", name)
        return v

    @field_validator("backbones")
    @classmethod
    def _backbones(cls, v: list[str]) -> list[str]:
        for i, name in enumerate(v):
            if not NAME_RE.match(name):
                raise ValueError(f"@[{i}] backbone name {name!r} must match {NAME_RE.pattern}")
        if len(set(v)) != len(v):
            raise ValueError("backbones must be distinct")
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError("seeds must be distinct")
        return v

    @field_validator("common")
    @classmethod
    def _common(cls, v: list[str]) -> list[str]:
        return _check_overrides(v)

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, v: list[str]) -> list[str]:
        for i, m in enumerate(v):
            _check_metric(m, f"@[{i}] ")
        return v

    @model_validator(mode="after")
    def _refs(self) -> ExperimentFile:
        if self.reference is None:
            self.reference = "base" if "base" in self.variants else next(iter(self.variants))
        elif self.reference not in self.variants:
            raise ValueError(f"reference: {self.reference!r} is not a variant "
                             f"({', '.join(self.variants)})")
        for vname, v in self.variants.items():
            for ds in v.by_dataset:
                if ds not in self.datasets:
                    raise ValueError(f"variants.{vname}.by_dataset.{ds}: not in datasets "
                                     f"({', '.join(self.datasets)})")
        if self.noise is not None:
            n = self.noise
            if n.dataset not in self.datasets:
                raise ValueError(f"noise.dataset: {n.dataset!r} is not in datasets "
                                 f"({', '.join(self.datasets)})")
            for i, m in enumerate(n.methods or []):
                if m not in self.variants:
                    raise ValueError(f"noise.methods[{i}]: {m!r} is not a variant "
                                     f"({', '.join(self.variants)})")
            for i, b in enumerate(n.backbones or []):
                if not NAME_RE.match(b):
                    raise ValueError(f"noise.backbones[{i}]: bad backbone name {b!r}")
            _check_metric(n.metric, "noise.metric: ")
        return self


def _check_metric(m: str, where: str) -> None:
    from lmmrec.eval.metrics import METRICS

    name, _, k = m.partition("@")
    if name not in METRICS or not k.isdigit():
        raise ValueError(f"{where}metric {m!r} must look like METRIC@K with METRIC in "
                         f"{', '.join(METRICS)}")


def key_path(loc: tuple[Any, ...]) -> str:
    """('variants', 'lmmrec', 'set', 0) -> 'variants.lmmrec.set[0]'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "<root>"


def _format_errors(e: ValidationError) -> list[str]:
    problems = []
    for err in e.errors():
        loc = [p for p in err["loc"] if p not in ("function-after", "function-before")]
        msg = err["msg"].removeprefix("Value error, ")
        # our validators name the inner position as "@[i] ..." / "@key[i] ..."
        m = re.match(r"^@(\S*) (.*)$", msg, flags=re.S)
        if m:
            suffix, msg = m.group(1), m.group(2)
            path = key_path(tuple(loc))
            path = (path if loc else "") + (suffix if suffix.startswith("[") or not loc
                                             else "." + suffix)
            problems.append(f"{path}: {msg}")
            continue
        # model-level checks name their own key path ("noise.dataset: ...")
        m = re.match(r"^([a-z_]+(?:\.[A-Za-z0-9_.+-]+|\[\d+\])*): (.*)$", msg, flags=re.S)
        if m and not loc:
            problems.append(f"{m.group(1)}: {m.group(2)}")
            continue
        problems.append(f"{key_path(tuple(loc))}: {msg}")
    return problems


# -- the plan ---------------------------------------------------------------------------------


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


@dataclass
class Experiment:
    spec: ExperimentFile
    file: Path | None
    base_dir: Path  # relative paths of the file resolve against it

    @property
    def out(self) -> Path:
        return self.path(self.spec.out)

    def path(self, p: str | Path) -> Path:
        p = Path(p).expanduser()
        return (p if p.is_absolute() else self.base_dir / p).resolve()

    def data_dir(self, name: str) -> Path:
        d = self.spec.datasets[name]
        return self.path(d.path) if d.path is not None else self.out / DATA_DIR / name

    def motivations_for(self, dataset: str, variant: str) -> tuple[Path | None, str]:
        """The artifact of (dataset, variant) and the key path it came from."""
        v = self.spec.variants[variant]
        if v.motivations is not None:
            return (self.path(v.motivations.replace("{dataset}", dataset)),
                    f"variants.{variant}.motivations")
        d = self.spec.datasets[dataset].motivations
        if d is not None:
            return self.path(d), f"datasets.{dataset}.motivations"
        return None, f"datasets.{dataset}.motivations"


def load_experiment(path: str | Path, base_dir: str | Path | None = None) -> Experiment:
    """Parse and schema-check an experiment file (cells are checked by `plan`)."""
    path = Path(path)
    raw = read_yaml(path)
    return experiment_from_dict(raw, base_dir or Path.cwd(), source=str(path), file=path)


def experiment_from_dict(raw: dict[str, Any], base_dir: str | Path, source: str = "experiment",
                         file: Path | None = None) -> Experiment:
    try:
        spec = ExperimentFile.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(f"{source}: invalid experiment file:\n  "
                          + "\n  ".join(_format_errors(e))) from None
    return Experiment(spec, file, Path(base_dir).resolve())


def plan(exp: Experiment, *, grid: bool = True, noise: bool = True,
         check_paths: bool = True, only: list[str] | None = None) -> Plan:
    """Every cell with its resolved RunConfig. Raises one ConfigError listing every problem
    (with key paths) before anything runs. ``only``: these datasets alone (the others are
    neither checked nor planned, e.g. while their motivations are still being extracted)."""
    errors: list[str] = []
    s = exp.spec
    result = Plan(exp)
    for i, name in enumerate(only or []):
        if name not in s.datasets:
            errors.append(f"--only[{i}]: {name!r} is not in datasets ({', '.join(s.datasets)})")
    chosen = [d for d in s.datasets if only is None or d in only]

    for i, b in enumerate(s.backbones + (s.noise.backbones or [] if s.noise else [])):
        where = (f"backbones[{i}]" if i < len(s.backbones)
                 else f"noise.backbones[{i - len(s.backbones)}]")
        _try(errors, where, lambda b=b: _resolve(b, {}, []))
    if check_paths:
        for name in chosen:
            _check_dataset(exp, name, s.datasets[name], errors)
    if errors:
        raise ConfigError(_joined(errors, exp))

    by_config: dict[str, Path] = {}
    motivation_problems: set[str] = set()

    def add(ds_label: str, base_name: str, backbone: str, variant: str, seed: int,
            data: Path, motivations: Path | None, mot_where: str, dir_: Path,
            level: float | None = None, source: str = "grid") -> None:
        v = s.variants[variant]
        if v.method == "base":
            motivations = None  # base ignores text: keep its cells independent of artifacts
        elif motivations is None:
            motivation_problems.add(
                f"{mot_where}: method {v.method!r} (variant {variant!r}) needs a motivation "
                f"artifact (set datasets.{base_name}.motivations or "
                f"variants.{variant}.motivations)")
            return
        cfg = _cell_config(exp, base_name, backbone, variant, seed, data, motivations,
                           errors)
        if cfg is None:
            return
        # identical configs (e.g. base under text-only noise) share one run folder
        key = json.dumps(_dump(cfg), sort_keys=True)
        dir_ = by_config.setdefault(key, dir_)
        result.cells.append(Cell(ds_label, backbone, variant, seed, dir_, cfg, level, source,
                                 base_name))

    if grid:
        for ds_name in chosen:
            for b in s.backbones:
                for vname in s.variants:
                    mot, where = exp.motivations_for(ds_name, vname)
                    for seed in s.seeds:
                        add(ds_name, ds_name, b, vname, seed, exp.data_dir(ds_name), mot,
                            where, cell_dir(exp.out, ds_name, b, vname, seed))
    if noise and s.noise is not None and s.noise.dataset in chosen:
        n = s.noise
        name = n.dataset
        clean = exp.data_dir(name)
        for level in n.levels:
            label = noise_label(name, level)
            data = clean
            if level > 0 and n.kind in ("interactions", "both"):
                data = exp.out / DATA_DIR / label
                result.add_job(NoiseJob("interactions", level, clean, data, n.seed))
            root = exp.out if level == 0 else exp.out / NOISE_DIR
            ds_label = name if level == 0 else label
            for vname in n.methods or list(s.variants):
                mot, where = exp.motivations_for(name, vname)
                if (level > 0 and n.kind in ("text", "both") and mot is not None
                        and s.variants[vname].method != "base"):
                    noised = exp.out / MOTIVATIONS_DIR / f"{label}-{mot.name}-{_slug(mot)}"
                    result.add_job(NoiseJob("text", level, mot, noised, n.seed))
                    mot = noised
                for b in n.backbones or s.backbones:
                    for seed in n.seeds or s.seeds:
                        add(ds_label, name, b, vname, seed, data, mot, where,
                            cell_dir(root, ds_label, b, vname, seed), level, "noise")
    errors.extend(sorted(motivation_problems))
    if check_paths and not errors:
        for cell in result.runs():
            _check_stored(cell, errors)
    if errors:
        raise ConfigError(_joined(errors, exp))
    return result


def _slug(path: Path) -> str:
    import hashlib

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
    from lmmrec.train.config import resolve_config

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


def _dump(cfg: Any) -> dict[str, Any]:
    d = json.loads(json.dumps(cfg.model_dump() if hasattr(cfg, "model_dump") else cfg))
    for a, b in VOLATILE_KEYS:
        d.get(a, {}).pop(b, None)
    return d


def _same_config(a: Any, b: Any) -> bool:
    return _dump(a) == _dump(b)


def _check_dataset(exp: Experiment, name: str, d: DatasetSpec, errors: list[str]) -> None:
    if d.path is not None:
        p = exp.path(d.path)
        if not (p / "manifest.json").exists() or not (p / "interactions.parquet").exists():
            errors.append(f"datasets.{name}.path: {p} is not a prepared dataset folder "
                          "(make one with `lmmrec data prepare`, or use prepare: {...})")
    elif not (exp.out / DATA_DIR / name / "manifest.json").exists():
        from lmmrec.data.catalog import resolve

        src = d.prepare.source if d.prepare and d.prepare.source else name
        try:
            resolve(src)
        except LmmrecError as e:
            errors.append(f"datasets.{name}.prepare.source: {e}")
    if d.motivations is not None:
        m = exp.path(d.motivations.replace("{dataset}", name))
        if not (m / "manifest.json").exists():
            errors.append(f"datasets.{name}.motivations: {m} is not a motivation artifact "
                          "(no manifest.json)")
    for vname, v in exp.spec.variants.items():
        if v.motivations is not None and v.method != "base":
            m = exp.path(v.motivations.replace("{dataset}", name))
            if not (m / "manifest.json").exists():
                errors.append(f"variants.{vname}.motivations: {m} is not a motivation "
                              f"artifact (no manifest.json) for dataset {name!r}")


def _check_stored(cell: Cell, errors: list[str]) -> None:
    """A cell folder that already holds a run must hold a run of this very config, and (as
    its resolved.json spells every default out) of the same defaults: a default of the
    aligner or the backbone may have changed since that run; and of the same motivation
    artifact contents (its fingerprint), which a re-export or an extraction may have changed."""
    from lmmrec.train.config import resolved

    for name, new, what in (("config.json", lambda: _dump(cell.config),
                             "of a different config"),
                            ("resolved.json", lambda: resolved(cell.config),
                             "made with other defaults or another motivation artifact")):
        stored = cell.dir / name
        if not stored.exists():
            continue
        try:
            old = json.loads(stored.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue  # an unreadable leftover: the cell is rerun from scratch
        if name == "config.json":
            old = _dump(old)
        want = new()
        # compared when both sides have one: a run from before fingerprints, or an artifact
        # a job of this experiment has yet to write (noise), cannot be checked
        if "motivations_fingerprint" not in old or "motivations_fingerprint" not in want:
            want.pop("motivations_fingerprint", None)
            old.pop("motivations_fingerprint", None)
        if old != want:
            diff = sorted(_diff_keys(old, want))
            errors.append(f"{cell.dir}: holds a run {what} (differs at "
                          f"{', '.join(diff[:6])}); delete that folder or change `out`")
            return


def _diff_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b)):
            out += _diff_keys(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [] if a == b else [prefix.rstrip(".")]

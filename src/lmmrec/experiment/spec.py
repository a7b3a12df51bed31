"""The experiment file: its schema (pydantic), loading, and the layout of its out folder.

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

Every problem is reported with the key path of the value that caused it
(``variants.lmmrec.set[0]: ...``). Expanding the file into runs: :mod:`lmmrec.experiment.plan`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator

from lmmrec.align.registry import ALIGNERS
from lmmrec.config import Strict, parse_override, read_yaml
from lmmrec.errors import ConfigError
from lmmrec.eval.metrics import METRICS

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
# the out folder: prepared datasets, noised motivation artifacts, noise study cells; the
# plan with every cell's status, and the spec as run
DATA_DIR, MOTIVATIONS_DIR, NOISE_DIR = "_data", "_motivations", "noise"
STATE_FILE, SPEC_FILE = "experiment.json", "experiment.yaml"
DEFAULT_LEVELS = [0.0, 0.05, 0.10, 0.15, 0.20, 0.25]


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

    @field_validator("datasets", "variants")
    @classmethod
    def _names(cls, v: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        for name in v:  # each becomes a folder name
            _check_name(str(info.field_name).removesuffix("s"), name)
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
            check_metric(m, f"@[{i}] ")
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
            check_metric(n.metric, "noise.metric: ")
        return self


def check_metric(m: str, where: str) -> None:
    """ValueError unless ``m`` names a metric at a cutoff (``recall@20``); ``where`` prefixes
    the message (a key path or an option)."""
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


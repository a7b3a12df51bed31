"""Typed, layered configuration: defaults < YAML files < `--set key=value` overrides.

Every config is a pydantic model that forbids unknown keys, so a typo fails
with its dotted key path before any work starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from lmmrec.config_doc import candidates, suggest
from lmmrec.errors import ConfigError

T = TypeVar("T", bound=BaseModel)


class Strict(BaseModel):
    """Base for config sections: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ConfigError(f"{path}: config file not found") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    except RecursionError as e:
        raise ConfigError(f"{path}: not valid YAML: nested too deeply") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not valid YAML: not UTF-8 ({e.reason})") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def parse_override(item: str) -> dict[str, Any]:
    """`a.b.c=value` -> {"a": {"b": {"c": value}}}; the value is parsed as YAML."""
    if "=" not in item:
        raise ConfigError(f"override '{item}' must look like key=value")
    key, raw = item.split("=", 1)
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override '{item}' has an empty key")
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    except RecursionError as e:
        raise ConfigError(f"override '{key}': value nested too deeply") from e
    node: dict[str, Any] = {}
    cur = node
    parts = key.split(".")
    for part in parts[:-1]:
        cur[part] = {}
        cur = cur[part]
    cur[parts[-1]] = value
    return node


def build(cls: type[T], layers: list[dict[str, Any]], source: str = "config",
          prefix: str = "") -> T:
    """``cls`` from merged layers; errors name each key's dotted path (under ``prefix``,
    e.g. "align.") and an unknown key gets the closest known one."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = deep_merge(merged, layer)
    try:
        return cls.model_validate(merged)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            loc = prefix + ".".join(str(p) for p in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                hint = suggest(loc, candidates(cls, prefix))
                msg = "unknown key" + (f"; did you mean {hint}?" if hint else "") + \
                    " (every key: `lmmrec config show`)"
            problems.append(f"{loc}: {msg}" if loc else msg)
        raise ConfigError(f"{source}: invalid configuration: " + "; ".join(problems)) from e


def load_config(cls: type[T], files: list[str | Path] | None = None,
                overrides: list[str] | None = None,
                base: dict[str, Any] | None = None) -> T:
    layers: list[dict[str, Any]] = [base or {}]
    layers += [read_yaml(f) for f in files or []]
    layers += [parse_override(o) for o in overrides or []]
    named = [str(f) for f in files or []] + (["--set overrides"] if overrides else [])
    source = ", ".join(named) or "config"
    return build(cls, layers, source)


def packaged_config(*parts: str) -> Path:
    """Path of a YAML shipped inside the package (src/lmmrec/configs/...)."""
    return Path(__file__).parent.joinpath("configs", *parts)


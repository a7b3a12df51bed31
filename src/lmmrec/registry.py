"""Registries of pluggable parts (backbones, aligners): name -> "module:Class".

A class is imported on first use, so importing a registry stays light (no torch). Each
registered class carries `Config`, its settings model; `config(name, params)` validates a
plain dict against it, with errors naming each key's dotted path.
"""

from __future__ import annotations

import importlib
from typing import Any

from lmmrec.config import Strict, build
from lmmrec.errors import ConfigError


class Registry(dict[str, str]):
    """A plain dict (so a test or plugin adds an entry with one line), plus lookups.

    ``what`` names an entry in messages ("backbone", "method"); ``prefix`` is the settings'
    key path ("backbone."); ``source`` formats the error source from the name; ``extra``
    lists names that are valid choices without a class (the method "base").
    """

    def __init__(self, entries: dict[str, str], *, what: str, prefix: str, source: str,
                 extra: tuple[str, ...] = ()) -> None:
        super().__init__(entries)
        self.what, self.prefix, self.source, self.extra = what, prefix, source, extra

    def names(self) -> list[str]:
        """Every valid choice: the extra names, then the registered ones sorted."""
        return [*self.extra, *sorted(self)]

    def check(self, name: str) -> str:
        """``name`` if valid, else ValueError listing the valid ones (for pydantic
        validators, which report it under the field's key)."""
        if name not in self.names():
            raise ValueError(f"unknown {self.what} {name!r}; valid: {', '.join(self.names())}")
        return name

    def cls(self, name: str) -> type:
        """The registered class (imported now), or a ConfigError listing the valid names."""
        if name not in self:
            raise ConfigError(f"unknown {self.what} {name!r}; valid: {', '.join(self.names())}")
        module, attr = self[name].split(":")
        return getattr(importlib.import_module(module), attr)

    def config(self, name: str, params: dict[str, Any]) -> Strict:
        """The class's typed `Config` from a plain dict; a ConfigError names a bad key."""
        return build(self.cls(name).Config, [params], source=self.source.format(name),
                     prefix=self.prefix)

"""Errors users see. Each names the file, line or field at fault."""

from __future__ import annotations


class LmmrecError(Exception):
    """Base class: the CLI prints these without a traceback and exits non-zero."""


class DataError(LmmrecError):
    """Bad or unreadable input data."""

    def __init__(self, message: str, *, path: object = None, line: int | None = None,
                 field: str | None = None) -> None:
        where = []
        if path is not None:
            where.append(str(path))
        if line is not None:
            where.append(f"line {line}")
        if field is not None:
            where.append(f"field '{field}'")
        self.path, self.line, self.field = path, line, field
        super().__init__(f"{': '.join([', '.join(where), message]) if where else message}")


class ConfigError(LmmrecError):
    """A configuration value is missing, unknown or invalid."""

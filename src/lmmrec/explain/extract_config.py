"""The LLM backend config for cold start, as `lmmrec extract` builds it (YAML + --set)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def backend_config(kind: str = "local", config: Path | None = None,
                   overrides: list[str] | None = None) -> Any:
    from lmmrec.config import load_config
    from lmmrec.llm.backends import BackendConfig

    return load_config(BackendConfig, [config] if config else [], overrides or [],
                       base={"kind": kind})

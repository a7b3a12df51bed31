"""Every configuration key with its default and one line of help, read from the pydantic
models themselves: the help is the field's ``description``, else the comment on (or right
above) its line in the model's source. Nothing is written twice, so it cannot go stale."""

from __future__ import annotations

import difflib
import inspect
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import BaseModel


@dataclass(frozen=True)
class Key:
    path: str
    default: Any
    help: str


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


@cache
def _comments(cls: type) -> dict[str, str]:
    """field name -> its comment in ``cls``'s own source (trailing, else the lines above)."""
    try:
        lines = inspect.getsource(cls).splitlines()
    except (OSError, TypeError):
        return {}
    out: dict[str, str] = {}
    above: list[str] = []
    for line in lines[1:]:
        s = line.strip()
        if s.startswith("#"):
            above.append(s.lstrip("#").strip())
            continue
        m = re.match(r"^\s+([A-Za-z_]\w*)\s*:[^=]*(=.*)?$", line)
        if m and not s.startswith(("def ", "@", "return")):
            code, _, trailing = line.partition("  #")
            text = trailing.strip() or " ".join(above)
            out.setdefault(m.group(1), text)
        above = []
    return out


HELP_CHARS = 110


def one_line(text: str) -> str:
    """The first sentence, cut at a word boundary if still long."""
    text = " ".join(text.split())
    m = re.search(r"(?<=[a-z)])\.\s", text)
    if m:
        text = text[:m.start()]
    if len(text) > HELP_CHARS:
        text = text[:HELP_CHARS].rsplit(" ", 1)[0].rstrip(",;:(") + " ..."
    return text


def _help(cls: type[BaseModel], name: str) -> str:
    info = cls.model_fields[name]
    if info.description:
        return one_line(info.description)
    for klass in cls.__mro__:
        if _is_model(klass) and name in getattr(klass, "__annotations__", {}):
            text = _comments(klass).get(name)
            if text:
                return one_line(text)
    return ""


def _default(info: Any) -> Any:
    if info.default_factory is not None:
        value = info.default_factory()
    else:
        value = info.default
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value


def model_keys(cls: type[BaseModel], prefix: str = "") -> list[Key]:
    """Every leaf key of ``cls`` (nested models flattened with dots)."""
    out: list[Key] = []
    for name, info in cls.model_fields.items():
        path = f"{prefix}{name}"
        if _is_model(info.annotation):
            out += model_keys(info.annotation, path + ".")
            continue
        out.append(Key(path, _default(info), _help(cls, name)))
    return out


def suggest(key: str, candidates: list[str]) -> str | None:
    """The closest known key to a misspelt one (whole dotted path, else its last part)."""
    hit = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    if hit:
        return hit[0]
    head, _, leaf = key.rpartition(".")
    leaves = {c.rpartition(".")[2]: c for c in candidates
              if c.rpartition(".")[0] == head or not head}
    hit = difflib.get_close_matches(leaf, list(leaves), n=1, cutoff=0.6)
    return leaves[hit[0]] if hit else None


def candidates(cls: type[BaseModel], prefix: str = "") -> list[str]:
    """Every key path of ``cls``, sections included (``train`` as well as
    ``train.max_epochs``)."""
    keys = [k.path for k in model_keys(cls, prefix)]
    sections = {p.rsplit(".", i)[0] for p in keys for i in range(1, p.count(".") + 1)}
    return sorted(set(keys) | sections)

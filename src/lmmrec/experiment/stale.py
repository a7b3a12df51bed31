"""Whether a cell folder that already holds a run still matches the cell's config.

A resumed or skipped cell must be a run of this very config and, as its resolved.json spells
every default out, of the same defaults (an aligner's or a backbone's default may have changed
since) and of the same motivation artifact contents (their fingerprint).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from lmmrec.config import build
from lmmrec.errors import ConfigError
from lmmrec.train.config import RunConfig, resolved
from lmmrec.train.files import CONFIG, RESOLVED

if TYPE_CHECKING:  # type hints only: plan imports this module
    from lmmrec.experiment.plan import Cell

# Keys of a stored config.json that do not change results (a resumed cell may differ there).
VOLATILE_KEYS = {("train", "progress"), ("train", "threads")}


def dump_config(cfg: Any) -> dict[str, Any]:
    """A RunConfig (or a stored config.json) as JSON data, without the volatile keys."""
    d = json.loads(json.dumps(cfg.model_dump() if hasattr(cfg, "model_dump") else cfg))
    for a, b in VOLATILE_KEYS:
        d.get(a, {}).pop(b, None)
    return d


def _config_now(raw: Any) -> Any:
    """A stored config.json with today's defaults spelled out, so a config written in another
    but equivalent way (a preset that listed its defaults, say) compares equal; as stored
    when it no longer validates (then it differs, and the error names where)."""
    try:
        return resolved(build(RunConfig, [raw]))
    except (ConfigError, ValueError):
        return raw


def check_stored(cell: Cell, errors: list[str]) -> None:
    """A cell folder that already holds a run must hold a run of this very config, and (as
    its resolved.json spells every default out) of the same defaults: a default of the
    aligner or the backbone may have changed since that run; and of the same motivation
    artifact contents (its fingerprint), which a re-export or an extraction may have changed."""
    now = resolved(cell.config)  # once: it fingerprints the motivation artifact's files
    for name, new, what in ((CONFIG, lambda: dump_config(now), "of a different config"),
                            (RESOLVED, lambda: dict(now),
                             "made with other defaults or another motivation artifact")):
        stored = cell.dir / name
        if not stored.exists():
            continue
        try:
            old = json.loads(stored.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue  # an unreadable leftover: the cell is rerun from scratch
        want = new()
        if name == CONFIG:
            old = dump_config(_config_now(old))
        else:
            # a setting added since that run: the config check above passed, so this cell
            # leaves it at its default, which by contract reproduces the old behaviour
            want = _without_new_keys(want, old)
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


def _without_new_keys(want: Any, old: Any) -> Any:
    """``want`` without the dict keys (at any depth) that ``old`` does not have."""
    if not (isinstance(want, dict) and isinstance(old, dict)):
        return want
    return {k: _without_new_keys(v, old[k]) for k, v in want.items() if k in old}


def _diff_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b)):
            out += _diff_keys(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [] if a == b else [prefix.rstrip(".")]

"""`lmmrec experiment pick DIR`: the best setting of each method, chosen on validation only.

A search experiment (e.g. tune-align.yaml) runs several variants of one method (weights x0.2,
x1, x4, ...). Variants form families: the same method fed the same text input
(`align.text_input`), named after the family's shortest variant name (`rlmrec-con` and
`rlmrec-con-w4x` vs `rlmrec-con-phrases` and `rlmrec-con-phrases-w4x`): what text a method
reads is a different baseline, not a knob to tune. For each dataset and family this picks the
variant with the highest mean *validation* metric (averaged over seeds, then over
backbones) and prints the overrides to put under that variant's `by_dataset` in the
comparison file. Test metrics are never read,
so the choice cannot leak the test split; the search and the pick are written to
DIR/picks.md and DIR/picks.json as the record of how the settings were chosen.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lmmrec.errors import ConfigError
from lmmrec.experiment.spec import check_metric
from lmmrec.experiment.stats import collect_cells, read_metrics, summarise
from lmmrec.io import atomic_write_text as write_text

PICKS_MD, PICKS_JSON = "picks.md", "picks.json"


def _overrides(spec: dict[str, Any], variant: str, dataset: str) -> list[str]:
    v = spec["variants"][variant]
    return list(v.get("set") or []) + list((v.get("by_dataset") or {}).get(dataset) or [])


INPUT_KEYS = ("align.text_input",)  # settings that make another baseline, not another knob


def _family_key(spec: dict[str, Any], variant: str, dataset: str) -> tuple[str, ...]:
    sets = dict(o.split("=", 1) for o in _overrides(spec, variant, dataset) if "=" in o)
    return (spec["variants"][variant]["method"], *(sets.get(k, "") for k in INPUT_KEYS))


def pick(root: str | Path, metric: str = "recall@20") -> dict[str, Any]:
    """{dataset: {family: choice}} from the validation metrics of DIR's finished grid."""
    root = Path(root)
    try:
        check_metric(metric, "--metric: ")
    except ValueError as e:
        raise ConfigError(str(e)) from None
    cells, spec = collect_cells(root)
    if not spec.get("variants"):
        raise ConfigError(f"{root}: no experiment.json with the variants' methods; "
                          "run the search with `lmmrec experiment run` first")
    cells = [c for c in cells if c.get("source", "grid") == "grid"]
    if not cells:
        raise ConfigError(f"{root}: no grid runs found")
    cells_all = cells
    # a family is picked once all its cells are finished (a search may run some families
    # alone: `experiment run --variants`); the others are listed, never half-picked
    open_keys: dict[str, dict[tuple[str, ...], set[str]]] = {}
    for c in cells:
        if read_metrics(Path(c["dir"])) is None:
            key = _family_key(spec, c["variant"], c["dataset"])
            open_keys.setdefault(c["dataset"], {}).setdefault(key, set()).add(c["variant"])
    cells = [c for c in cells
             if _family_key(spec, c["variant"], c["dataset"]) not in open_keys.get(c["dataset"], {})]
    unfinished = {ds: {_family_name(spec, ds, cells_all, key): sorted(vs)
                       for key, vs in fams.items()}
                  for ds, fams in open_keys.items()}
    if not cells:
        raise ConfigError(f"{root}: no family of variants has all its cells finished yet; "
                          "finish the search before picking from it")
    summary = summarise(cells, [metric], reference=None, split="val")

    # dataset -> method -> variant -> [per-backbone mean]
    scores: dict[str, dict[str, dict[str, list[float]]]] = {}
    seeds: dict[tuple[str, str], list[int]] = {}
    for g in summary["groups"]:
        mean = g["metrics"][metric]["mean"]
        if mean is None:
            raise ConfigError(f"{root}: {g['dataset']}/{g['backbone']}/{g['variant']} has no "
                              f"validation {metric}")
        key = _family_key(spec, g["variant"], g["dataset"])
        scores.setdefault(g["dataset"], {}).setdefault(key, {}).setdefault(
            g["variant"], []).append(float(mean))
        seeds[(g["dataset"], g["variant"])] = g["seeds"]

    picks: dict[str, Any] = {}
    for ds in sorted(scores):
        picks[ds] = {}
        families = {min(v, key=lambda n: (len(n), n)): v for v in scores[ds].values()}
        for family in sorted(families):
            by_var = families[family]
            n_backbones = {len(v) for v in by_var.values()}
            if len(n_backbones) != 1:
                raise ConfigError(f"{root}: {ds}/{family}: variants ran on different backbones")
            # ties (to 12 digits, past float noise) go to the first name, so picks are stable
            ranked = sorted(((sum(v) / len(v), name) for name, v in by_var.items()),
                            key=lambda t: (-round(t[0], 12), t[1]))
            best_score, best = ranked[0]
            picks[ds][family] = {
                "variant": best, "method": spec["variants"][best]["method"],
                "set": _overrides(spec, best, ds),
                "val_" + metric: best_score, "seeds": seeds[(ds, best)],
                "candidates": [{"variant": n, "val_" + metric: s,
                                "set": _overrides(spec, n, ds)} for s, n in ranked],
            }
    return {"metric": metric, "split": "val", "root": str(root), "picks": picks,
            "unfinished": unfinished}


def _family_name(spec: dict[str, Any], dataset: str, cells: list[dict[str, Any]],
                 key: tuple[str, ...]) -> str:
    """A family's name: its shortest variant name (as in the picks)."""
    names = {c["variant"] for c in cells
             if c["dataset"] == dataset and _family_key(spec, c["variant"], dataset) == key}
    return min(names, key=lambda n: (len(n), n))


def to_yaml_hint(result: dict[str, Any]) -> str:
    """The `by_dataset` lines to paste under each method's variant in the comparison file."""
    lines = [f"# picked on validation {result['metric']} from {result['root']} "
             "(`lmmrec experiment pick`)"]
    families = sorted({m for p in result["picks"].values() for m in p})
    for family in families:
        lines.append(f"{family}:  # variants.{family}.by_dataset")
        for ds, p in result["picks"].items():
            if family in p:
                lines.append(f"  {ds}: {json.dumps(p[family]['set'])}")
    return "\n".join(lines) + "\n"


def to_markdown(result: dict[str, Any]) -> str:
    m = result["metric"]
    out = [f"# Picks on validation {m}", "",
           f"From `{result['root']}`; mean over seeds, then over backbones. Test metrics were "
           "not read.", ""]
    for ds, methods in result["picks"].items():
        out += [f"## {ds}", "", f"| family | variant | overrides | val {m} | picked |",
                "|---|---|---|---|---|"]
        for family, p in methods.items():
            for c in p["candidates"]:
                mark = "**yes**" if c["variant"] == p["variant"] else ""
                sets = ", ".join(f"`{s}`" for s in c["set"]) or "(defaults)"
                out.append(f"| {family} | {c['variant']} | {sets} | {c['val_' + m]:.4f} | "
                           f"{mark} |")
        out.append("")
    for ds, fams in (result.get("unfinished") or {}).items():
        for family, names in fams.items():
            out.append(f"Not picked ({ds}, unfinished cells): {family} ({', '.join(names)})")
        out.append("")
    out += ["```yaml", to_yaml_hint(result).rstrip("\n"), "```", ""]
    return "\n".join(out)


def write_picks(root: str | Path, result: dict[str, Any]) -> tuple[Path, Path]:
    root = Path(root)
    md, js = root / PICKS_MD, root / PICKS_JSON
    write_text(md, to_markdown(result))
    write_text(js, json.dumps(result, indent=2) + "\n")
    return md, js

"""Noise robustness: noised copies of a dataset / motivation artifact, and the study's
table and plot (metric vs noise level, one line per method; cf. the paper's Figure 2).

- :func:`inject_interactions` (RLMRec's protocol): ``round(p * n_train)`` fake training
  interactions, uniformly random (user, item) pairs that are in no split (nor repeated),
  seeded. Validation and test rows are copied untouched. The result is a new prepared
  folder; its manifest keeps the dataset's name and interactions fingerprint (so the clean
  data's artifacts still match it) and records the noise under ``noise``; the injected pairs are listed in ``noise_pairs.parquet``.
- :func:`noise_text`: in each phrase column (pos, neg, attr) of the artifact's extracted
  reviews, exactly ``round(p * n_phrases)`` phrase slots, drawn uniformly (so each entity
  loses a share p of its phrases in expectation), are replaced by a phrase of a random
  review by another user *and* another item. Replacements come from the artifact's own
  phrases, so the copied embeddings stay valid. The manifest records the noise.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lmmrec.data.dataset import PreparedDataset
from lmmrec.errors import DataError, LmmrecError
from lmmrec.experiment.stats import mean_std, read_metrics
from lmmrec.io import atomic_write_bytes, atomic_write_json, check_replaceable, new_dir, read_json
from lmmrec.layout import ARTIFACT, DATASET
from lmmrec.text.artifact import load_reviews, read_manifest, write_artifact


def _manifest(out: Path) -> dict[str, Any] | None:
    """The manifest at ``out`` (a dataset's or an artifact's), None if there is none."""
    try:
        m = read_json(out / DATASET.manifest)
    except LmmrecError:
        return None
    return m if isinstance(m, dict) else None


def _check_out(out: Path, overwrite: bool) -> None:
    """An existing ``out`` is replaced only when it is a noised copy made here."""
    m = _manifest(out)
    check_replaceable(out, overwrite, m is not None and "noise" in m, "a noised copy")


def _check_share(share: float) -> None:
    if not 0 <= share < 1:
        raise DataError(f"noise share {share} must be in [0, 1)")


def _existing_noise(out: Path, record: dict[str, Any]) -> bool:
    """True when ``out`` already holds exactly this noise (so it is reused, not rebuilt)."""
    m = _manifest(out)
    if m is None:
        return False
    old = m.get("noise") or {}
    return all(old.get(k) == v for k, v in record.items())


def sample_fake_pairs(n_users: int, n_items: int, existing: np.ndarray, n: int,
                      rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct codes ``user * n_items + item`` uniformly among pairs not in
    ``existing`` (codes too), in draw order."""
    total = n_users * n_items
    existing = np.unique(existing.astype(np.int64))
    if n > total - len(existing):
        raise DataError(f"cannot add {n} fake interactions: only {total - len(existing)} "
                        "(user, item) pairs are free")
    chosen: list[np.ndarray] = []
    have = 0
    taken = existing
    while have < n:
        batch = rng.integers(0, total, size=max(64, 2 * (n - have)), dtype=np.int64)
        _, first = np.unique(batch, return_index=True)
        batch = batch[np.sort(first)]  # distinct, in draw order
        batch = batch[~np.isin(batch, taken)]
        batch = batch[: n - have]
        chosen.append(batch)
        have += len(batch)
        taken = np.union1d(taken, batch)
    return np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)


def inject_interactions(src: str | Path, out: str | Path, share: float, seed: int,
                        overwrite: bool = True) -> dict[str, Any]:
    """Copy the prepared dataset ``src`` to ``out`` with ``round(share * n_train)`` fake
    training interactions; returns the noise record (also in out's manifest)."""
    _check_share(share)
    src, out = Path(src), Path(out)
    ds = PreparedDataset.load(src)
    inter = ds.interactions
    n_train = int((inter["split"] == "train").sum())
    n_add = round(share * n_train)
    record = {"kind": "fake_interactions", "share": share, "seed": seed,
              "n_added": n_add, "n_train_before": n_train, "source": str(src.resolve())}
    if out.exists():
        if _existing_noise(out, record):
            return record
        _check_out(out, overwrite)
    rng = np.random.default_rng(seed)
    codes = (inter["user"].to_numpy(np.int64) * ds.n_items + inter["item"].to_numpy(np.int64))
    fake = sample_fake_pairs(ds.n_users, ds.n_items, codes, n_add, rng)
    users, items = fake // ds.n_items, fake % ds.n_items
    noised = _with_fakes(inter, users, items)
    manifest = json.loads(json.dumps(ds.manifest))
    manifest["noise"] = record
    stats = manifest.setdefault("stats", {})
    stats["n_train"] = n_train + n_add
    stats["n_interactions"] = len(noised)
    stats["density"] = len(noised) / max(1, ds.n_users * ds.n_items)
    with new_dir(out) as tmp:
        noised.to_parquet(tmp / DATASET.interactions, index=False)
        for file in DATASET.tables.values():  # the other tables, byte for byte
            if file != DATASET.interactions:
                shutil.copy2(src / file, tmp / file)
        pd.DataFrame({"user": users.astype(np.int32), "item": items.astype(np.int32)}
                     ).to_parquet(tmp / DATASET.noise_pairs, index=False)
        atomic_write_json(tmp / DATASET.manifest, manifest, sort_keys=True)
    return record


def _with_fakes(inter: pd.DataFrame, users: np.ndarray, items: np.ndarray) -> pd.DataFrame:
    """``inter`` plus fake training rows (no rating, no time), sorted by (user, item)."""
    n_add = len(users)
    cols: dict[str, Any] = {}
    for c in inter.columns:
        dtype = inter[c].dtype
        if c == "user":
            cols[c] = users.astype(dtype)
        elif c == "item":
            cols[c] = items.astype(dtype)
        elif c == "split":
            cols[c] = pd.Series(["train"] * n_add, dtype=dtype)
        elif c == "rating":
            cols[c] = np.full(n_add, np.nan, dtype=dtype)
        elif c == "timestamp":
            cols[c] = np.full(n_add, -1, dtype=dtype)
        else:  # unknown extra column: missing values
            cols[c] = inter[c].iloc[:0].reindex(range(n_add)).to_numpy()
    extra = pd.DataFrame(cols)
    return (pd.concat([inter, extra[inter.columns]], ignore_index=True)
            .sort_values(["user", "item"], kind="stable").reset_index(drop=True))


def noise_text(src: str | Path, out: str | Path, share: float, seed: int,
               overwrite: bool = True) -> dict[str, Any]:
    """Copy the motivation artifact ``src`` to ``out`` with a share of its phrases replaced
    by phrases of other users' and items' reviews; returns the noise record."""
    _check_share(share)
    src, out = Path(src), Path(out)
    manifest = read_manifest(src)
    record: dict[str, Any] = {"kind": "text_phrases", "share": share, "seed": seed,
                              "source": str(src.resolve())}
    if out.exists():
        if _existing_noise(out, record):
            return read_manifest(out)["noise"]
        _check_out(out, overwrite)
    df = load_reviews(src, ok_only=False)  # every row: failed ones are kept as they are
    rng = np.random.default_rng(seed)
    noised = df.copy()
    totals: dict[str, int] = {}
    replaced: dict[str, int] = {}
    for col in ARTIFACT.review_phrases:
        noised[col], totals[col], replaced[col] = _swap_phrases(df, col, share, rng)
    record.update({"n_phrases": totals, "n_replaced": replaced})
    manifest = dict(manifest)
    manifest["noise"] = record
    # item offers (from listings, not reviews) are kept as they are, so every level differs
    # from level 0 by the review phrases alone
    write_artifact(out, noised, manifest, copy_from=src,
                   copy=(ARTIFACT.phrases, ARTIFACT.embeddings, ARTIFACT.items))
    return record


def _swap_phrases(df: pd.DataFrame, col: str, share: float, rng: np.random.Generator
                  ) -> tuple[list[list[Any]], int, int]:
    """Column ``col`` of ``df`` with ``round(share * n)`` of its n phrase slots (in ok
    rows) swapped for a donor's phrase; n and how many were swapped."""
    ok = np.flatnonzero((df["status"] == "ok").to_numpy())
    users = df["user_id"].astype(str).to_numpy()
    items = df["item_id"].astype(str).to_numpy()
    lists = [list(x) if x is not None else [] for x in df[col]]
    slot_row = np.array([r for r in ok for _ in lists[r]], dtype=np.int64)
    slot_pos = np.array([j for r in ok for j in range(len(lists[r]))], dtype=np.int64)
    n_slots = len(slot_row)
    k = round(share * n_slots)
    if not k:
        return lists, n_slots, k
    originals = [lists[r][j] for r, j in zip(slot_row, slot_pos, strict=True)]
    targets = rng.choice(n_slots, size=k, replace=False)
    new = [list(x) for x in lists]
    for t in targets:
        r, j = slot_row[t], slot_pos[t]
        new[r][j] = _donor(rng, slot_row, originals, users, items, r, lists[r][j])
    return new, n_slots, k


def _donor(rng: np.random.Generator, slot_row: np.ndarray, originals: list[str],
           users: np.ndarray, items: np.ndarray, row: int, phrase: str,
           tries: int = 10_000) -> str:
    """A phrase of a random slot whose review has another user and another item, and that
    differs from ``phrase``."""
    for _ in range(tries):
        t = int(rng.integers(len(slot_row)))
        r = slot_row[t]
        if users[r] != users[row] and items[r] != items[row] and originals[t] != phrase:
            return originals[t]
    raise DataError("text noise: no phrase of another user and item to swap in "
                    "(the artifact is too small)")


# -- the study's table and plot -----------------------------------------------------------------


def noise_summary(cells: list[dict[str, Any]], metric: str, split: str = "test",
                  focus: str = "lmmrec") -> dict[str, Any]:
    """Mean ± std of ``metric`` per (backbone, method, level) over seeds, and how fast each
    method degrades (:func:`degradation`, ``focus`` tested against the others); ``cells``
    are records with backbone, variant, seed, level and dir."""
    groups: dict[tuple[str, str], dict[float, list[float]]] = {}
    by_seed: dict[tuple[str, str], dict[int, dict[float, float]]] = {}
    for c in cells:
        m = read_metrics(Path(c["dir"]))
        if m is None or metric not in m.get(split, {}):
            continue
        key, v = (c["backbone"], c["variant"]), float(m[split][metric])
        groups.setdefault(key, {}).setdefault(float(c["level"]), []).append(v)
        by_seed.setdefault(key, {}).setdefault(int(c["seed"]), {})[float(c["level"])] = v
    rows = []
    for (backbone, variant), by_level in groups.items():
        clean = by_level.get(0.0)
        clean_mean = mean_std(clean)[0] if clean else None
        for level in sorted(by_level):
            mean, std = mean_std(by_level[level])
            drop = (None if not clean_mean else (mean / clean_mean - 1) * 100)
            rows.append({"backbone": backbone, "method": variant, "level": level,
                         "n": len(by_level[level]), "mean": mean, "std": std,
                         "change_vs_clean_pct": drop})
    return {"metric": metric, "split": split, "rows": rows, **degradation(by_seed, focus)}


def relative_slope(by_level: dict[float, float]) -> float | None:
    """Least-squares slope of metric / clean metric - 1 over the noise levels, as the
    change in % per 10 points of noise (None without a clean run and one noised level)."""
    clean = by_level.get(0.0)
    if not clean or len(by_level) < 2:
        return None
    x = np.array(sorted(by_level), dtype=np.float64)
    y = np.array([by_level[lv] / clean - 1 for lv in x], dtype=np.float64)
    return float(np.polyfit(x, y, 1)[0] * 10)  # per unit share -> % per 10 points


def degradation(by_seed: dict[tuple[str, str], dict[int, dict[float, float]]],
                focus: str = "lmmrec") -> dict[str, Any]:
    """Each method's degradation (:func:`relative_slope` per seed, mean ± std), and a
    paired test by seed of ``focus``'s slopes against every other method's: a positive
    difference means ``focus`` loses less of its clean metric as noise grows."""
    from lmmrec.experiment.stats import paired_tests

    slopes = {k: {s: v for s, lv in seeds.items() if (v := relative_slope(lv)) is not None}
              for k, seeds in by_seed.items()}
    rows = []
    for (backbone, method), per in slopes.items():
        mean, std = mean_std(list(per.values())) if per else (None, None)
        rows.append({"backbone": backbone, "method": method, "n": len(per),
                     "slope_pct_per_10pt": mean, "std": std})
    tests = []
    for (backbone, method), per in slopes.items():
        mine = slopes.get((backbone, focus))
        if method == focus or not mine:
            continue
        common = sorted(set(mine) & set(per))
        x, y = [mine[s] for s in common], [per[s] for s in common]
        t = paired_tests(x, y)
        tests.append({"backbone": backbone, "focus": focus, "method": method,
                      "n_pairs": len(common),
                      "diff_mean": float(np.mean(np.subtract(x, y))) if common else None,
                      "t_p": t["t_p"], "w_p": t["w_p"], "notes": t["notes"]})
    return {"degradation": rows, "degradation_tests": tests}


def plot_noise(summary: dict[str, Any], path: str | Path, title: str = "") -> Path:
    """Metric vs noise level (%), one line per method (one panel per backbone)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary["rows"]
    backbones = list(dict.fromkeys(r["backbone"] for r in rows))
    fig, axes = plt.subplots(1, max(1, len(backbones)), figsize=(4.2 * max(1, len(backbones)),
                             3.4), squeeze=False)
    markers = "osD^v<>p*h"
    for ax, backbone in zip(axes[0], backbones or [""], strict=False):
        methods = list(dict.fromkeys(r["method"] for r in rows if r["backbone"] == backbone))
        for k, method in enumerate(methods):
            pts = sorted((r["level"], r["mean"], r["std"] or 0.0) for r in rows
                         if r["backbone"] == backbone and r["method"] == method)
            x = [p[0] * 100 for p in pts]
            y = [p[1] for p in pts]
            e = [p[2] for p in pts]
            ax.errorbar(x, y, yerr=e, marker=markers[k % len(markers)], capsize=3,
                        label=method)
        ax.set_xlabel("noise level (%)")
        ax.set_ylabel(summary["metric"].replace("recall", "Recall").replace("ndcg", "NDCG"))
        ax.set_title(f"{title}\n{backbone}" if title else backbone, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    png = io.BytesIO()
    fig.savefig(png, format=path.suffix.lstrip(".") or "png", dpi=150)
    plt.close(fig)
    atomic_write_bytes(path, png.getvalue())
    return path


def noise_markdown(summary: dict[str, Any], title: str = "") -> str:
    rows = summary["rows"]
    levels = sorted({r["level"] for r in rows})
    head = f"# Noise robustness{': ' + title if title else ''}\n\n"
    head += (f"{summary['split']} {summary['metric']}, mean ± std over seeds; in brackets the "
             "change vs the clean (0 %) run.\n\n")
    lines = ["| backbone | method | " + " | ".join(f"{lv * 100:g} %" for lv in levels) + " |",
             "|---|---|" + "---|" * len(levels)]
    keys = list(dict.fromkeys((r["backbone"], r["method"]) for r in rows))
    for b, m in keys:
        cells = []
        for lv in levels:
            r = next((r for r in rows if r["backbone"] == b and r["method"] == m
                      and r["level"] == lv), None)
            if r is None:
                cells.append("—")
                continue
            txt = f"{r['mean']:.4f} ± {(r['std'] or 0):.4f}"
            if r["change_vs_clean_pct"] is not None and lv > 0:
                txt += f" ({r['change_vs_clean_pct']:+.2f} %)"
            cells.append(txt)
        lines.append(f"| {b} | {m} | " + " | ".join(cells) + " |")
    return head + "\n".join(lines) + "\n" + _degradation_markdown(summary)


def _degradation_markdown(summary: dict[str, Any]) -> str:
    rows, tests = summary.get("degradation") or [], summary.get("degradation_tests") or []
    if not rows:
        return ""
    out = ["", "How fast each method degrades: per seed, the least-squares slope of "
           f"{summary['metric']} / its clean value - 1 over the levels, in % per 10 points "
           "of noise (mean ± std over seeds; closer to 0 is more robust).", "",
           "| backbone | method | n | slope (% per 10 pt) |", "|---|---|---|---|"]
    for r in rows:
        v = "—" if r["slope_pct_per_10pt"] is None else \
            f"{r['slope_pct_per_10pt']:+.2f} ± {(r['std'] or 0):.2f}"
        out.append(f"| {r['backbone']} | {r['method']} | {r['n']} | {v} |")
    if tests:
        out += ["", "Paired by seed, the focus method's slope minus the other's (positive: "
                "the focus method loses less), paired t-test and Wilcoxon:", "",
                "| backbone | focus vs | n | difference (pt) | p_t | p_W |",
                "|---|---|---|---|---|---|"]
        for t in tests:
            def f(p: float | None) -> str:
                return "—" if p is None else f"{p:.4f}"
            d = "—" if t["diff_mean"] is None else f"{t['diff_mean']:+.2f}"
            out.append(f"| {t['backbone']} | {t['focus']} vs {t['method']} | {t['n_pairs']} | "
                       f"{d} | {f(t['t_p'])} | {f(t['w_p'])} |")
    return "\n".join(out) + "\n"

"""Result statistics: our numbers against scipy's and against hand-computed values."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from lmmrec.experiment.stats import (
    mean_std,
    paired_tests,
    relative_improvement,
    summarise,
    to_markdown,
)

X = [0.1412, 0.1398, 0.1441, 0.1420, 0.1405, 0.1433, 0.1399]
Y = [0.1380, 0.1391, 0.1402, 0.1399, 0.1382, 0.1395, 0.1401]


def test_paired_tests_match_scipy():
    out = paired_tests(X, Y)
    t = stats.ttest_rel(X, Y)
    w = stats.wilcoxon(X, Y)
    assert out["n_pairs"] == 7
    assert out["t"] == pytest.approx(float(t.statistic), rel=1e-12)
    assert out["t_p"] == pytest.approx(float(t.pvalue), rel=1e-12)
    assert out["w"] == pytest.approx(float(w.statistic))
    assert out["w_p"] == pytest.approx(float(w.pvalue), rel=1e-12)
    assert out["notes"] == []


def test_small_n_and_zero_differences_are_noted():
    five = paired_tests(X[:5], Y[:5])
    assert five["t_p"] == pytest.approx(float(stats.ttest_rel(X[:5], Y[:5]).pvalue))
    assert five["w_p"] == pytest.approx(float(stats.wilcoxon(X[:5], Y[:5]).pvalue))
    assert any("cannot reach 0.05" in n for n in five["notes"])

    same = paired_tests([0.1, 0.2, 0.3], [0.1, 0.2, 0.3])
    assert same["t_p"] is None and same["w_p"] is None
    assert any("identical" in n for n in same["notes"])

    some_zero = paired_tests([0.1, 0.2, 0.35, 0.41], [0.1, 0.25, 0.3, 0.4])
    assert any("1 zero difference" in n for n in some_zero["notes"])
    assert some_zero["t_p"] == pytest.approx(
        float(stats.ttest_rel([0.1, 0.2, 0.35, 0.41], [0.1, 0.25, 0.3, 0.4]).pvalue))

    shifted = paired_tests([0.2, 0.3, 0.4], [0.1, 0.2, 0.3])
    assert shifted["t_p"] is None  # zero variance of the differences: no t
    assert any("same difference" in n for n in shifted["notes"])

    one = paired_tests([0.2], [0.1])
    assert one["t_p"] is None and one["w_p"] is None and "no test" in one["notes"][0]
    json.dumps([five, same, some_zero, shifted, one])  # JSON-safe (no inf / nan)


def test_mean_std_and_relative_improvement_by_hand():
    mean, std = mean_std([0.10, 0.12, 0.14])
    assert mean == pytest.approx(0.12)
    assert std == pytest.approx(0.02)  # sqrt(((-.02)^2 + 0 + .02^2) / (3 - 1))
    assert mean_std([0.3]) == (0.3, None)
    assert relative_improvement(0.12, 0.10) == pytest.approx(20.0)
    assert relative_improvement(0.09, 0.10) == pytest.approx(-10.0)
    assert relative_improvement(0.1, 0.0) is None


def _run(root, ds, bb, var, seed, r20):  # noqa: ANN001, ANN202
    d = root / ds / bb / var / f"seed{seed}"
    d.mkdir(parents=True)
    (d / "metrics.json").write_text(json.dumps({"test": {"recall@20": r20},
                                                "val": {"recall@20": 1.0}}))
    return {"dataset": ds, "backbone": bb, "variant": var, "seed": seed, "dir": str(d)}


def test_summary_pairs_by_seed(tmp_path):
    base = {1: 0.10, 2: 0.11, 3: 0.12}
    new = {3: 0.13, 1: 0.12, 2: 0.115}  # listed out of order: pairing is by seed
    cells = [_run(tmp_path, "d", "lightgcn", "base", s, v) for s, v in base.items()]
    cells += [_run(tmp_path, "d", "lightgcn", "new", s, v) for s, v in new.items()]
    s = summarise(cells, ["recall@20"], "base")
    g = next(g for g in s["groups"] if g["variant"] == "new")["metrics"]["recall@20"]
    x, y = [0.12, 0.115, 0.13], [0.10, 0.11, 0.12]
    assert g["mean"] == pytest.approx(np.mean(x))
    assert g["std"] == pytest.approx(np.std(x, ddof=1))
    assert g["rel_improvement_pct"] == pytest.approx((np.mean(x) / np.mean(y) - 1) * 100)
    assert g["t_p"] == pytest.approx(float(stats.ttest_rel(x, y).pvalue))
    assert g["w_p"] == pytest.approx(float(stats.wilcoxon(x, y).pvalue))
    ref = next(g for g in s["groups"] if g["variant"] == "base")
    assert ref["is_reference"] and ref["metrics"]["recall@20"]["rel_improvement_pct"] is None
    md = to_markdown(s)
    assert f"{np.mean(x):.4f} ± {np.std(x, ddof=1):.4f}" in md
    assert f"{(np.mean(x) / np.mean(y) - 1) * 100:+.2f} %" in md
    assert not math.isnan(g["mean"])

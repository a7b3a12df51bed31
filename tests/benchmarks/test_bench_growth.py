"""benchmarks/bench_growth.py at tiny sizes: the power-law generator, the exponent fit, the
score-block arithmetic, and the whole measurement (prepare, train, evaluate, report)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from .bench_module import load_bench

bg = load_bench("bench_growth")


def _rank_slope(degrees: np.ndarray) -> float:
    """Slope of log degree against log popularity rank, over the middle ranks."""
    d = np.sort(degrees)[::-1]
    r = np.arange(1, len(d) + 1)
    mid = slice(10, len(d) // 10)
    return float(np.polyfit(np.log(r[mid]), np.log(d[mid]), 1)[0])


def test_generator_is_seeded_and_sized() -> None:
    spec = bg.GraphSpec(5000)
    a, b = bg.generate(spec), bg.generate(spec)
    assert a.equals(b)
    assert not a.equals(bg.generate(bg.GraphSpec(5000, seed=1)))
    assert len(a) == 5000
    assert not a.duplicated(["user_id", "item_id"]).any()
    assert a["user_id"].nunique() == spec.n_users == 500
    assert a["item_id"].nunique() == spec.n_items == 250
    assert set(a.columns) == {"user_id", "item_id", "rating", "timestamp"}
    with pytest.raises(ValueError, match="cannot be a graph"):
        bg.generate_pairs(bg.GraphSpec(100, users_per=1, items_per=1))


def test_degrees_follow_the_zipf_exponents() -> None:
    for user_exp, item_exp in ((0.5, 0.8), (0.3, 1.0)):
        spec = bg.GraphSpec(100_000, user_exponent=user_exp, item_exponent=item_exp)
        users, items = bg.generate_pairs(spec)
        assert abs(_rank_slope(np.bincount(users)) + user_exp) < 0.08
        assert abs(_rank_slope(np.bincount(items)) + item_exp) < 0.08


def test_fit_recovers_a_known_power_law() -> None:
    xs = [1e5, 1e6, 1e7]
    f = bg.fit_power_law(xs, [2.5 * x ** 1.3 for x in xs])
    assert f["exponent"] == pytest.approx(1.3, abs=1e-9)
    assert f["coefficient"] == pytest.approx(2.5, rel=1e-6)
    assert f["r2"] == pytest.approx(1.0)
    assert bg.crossing(f, 2.5 * 3e8 ** 1.3) == pytest.approx(3e8, rel=1e-6)
    noisy = bg.fit_power_law(xs + [3e6], [2.5 * x ** 1.3 for x in xs] + [2.5 * 3e6 ** 1.3 * 2])
    assert noisy["r2"] < 0.999
    assert bg.crossing(bg.fit_power_law(xs, [1 / x for x in xs]), 10.0) is None
    with pytest.raises(ValueError):
        bg.fit_power_law([1e5], [1.0])


def test_score_blocks_and_where_they_reach_the_ram() -> None:
    default, = (s for s in bg.SETTINGS if s.name == "default")
    dense, = (s for s in bg.SETTINGS if s.name == "dense")
    half, = (s for s in bg.SETTINGS if s.name == "float16 scores")
    chunked, = (s for s in bg.SETTINGS if s.name == "item chunks")
    assert default.block_bytes(10_000, 5_000) == 2048 * 5_000 * 4
    assert default.block_bytes(100, 5_000) == 100 * 5_000 * 4  # fewer users than a chunk
    assert dense.block_bytes(10_000, 5_000) == 10_000 * 5_000 * 4
    assert half.block_bytes(10_000, 5_000) == 2048 * 5_000 * 2
    assert chunked.block_bytes(10_000, 10 ** 6) == 2048 * 65536 * 4
    spec = bg.GraphSpec(1)
    ram = 24 * bg.GIB
    # default: 2048 users x N/20 items x 4 bytes = ram
    assert bg.block_crossing(default, spec, 0.8, ram) == pytest.approx(ram * 20 / 8192,
                                                                       rel=1e-3)
    assert bg.block_crossing(chunked, spec, 0.8, ram) is None  # a fixed block
    # dense: 0.8 N/10 users x N/20 items x 4 bytes = ram
    assert bg.block_crossing(dense, spec, 0.8, ram) == pytest.approx(
        math.sqrt(ram * 200 / (0.8 * 4)), rel=1e-3)


def test_running_out_of_memory_is_a_result(monkeypatch: pytest.MonkeyPatch) -> None:
    def greedy(args: dict) -> dict:
        raise MemoryError("Unable to allocate 2.0 TiB")

    def broken(args: dict) -> dict:
        raise RuntimeError("shape mismatch")

    monkeypatch.setitem(bg.PHASES, "greedy", greedy)
    monkeypatch.setitem(bg.PHASES, "broken", broken)
    out = bg.run_phase("greedy", {})
    assert out["outcome"] == "out of memory" and "2.0 TiB" in out["error"]
    with pytest.raises(RuntimeError, match="shape mismatch"):  # other errors stay errors
        bg.run_phase("broken", {})


def _check_results(res: dict, sizes: list[int]) -> None:
    assert [r["n"] for r in res["sizes"]] == sizes
    for r, n in zip(res["sizes"], sizes, strict=True):
        p = r["prepare"]
        assert (p["n_interactions"], p["n_users"], p["n_items"]) == (n, n // 10, n // 20)
        assert p["n_train"] + p["n_test"] < n
        for method in (bg.BASE, bg.LMMREC, bg.LMMREC_LEAN):
            t = r[method]
            assert t["outcome"] == "ok" and t["epoch_s"] > 0 and t["step_s"] > 0
            assert t["steps_per_epoch"] == math.ceil(p["n_train"] / 4096)
            assert t["n_nodes"] == n // 10 + n // 20
        assert r[bg.LMMREC]["text_stats"]["train_reviews_used"] > 0
        assert r[bg.LMMREC]["teacher_refresh_s"] > 0  # once an epoch: timed
        assert r[bg.LMMREC_LEAN]["teacher_refresh_s"] == 0  # per step: inside the steps
        assert r[bg.LMMREC]["text_hidden"] == (bg.TEXT_DIM + 32) // 2
        assert r["artifact"]["dim"] == bg.TEXT_DIM
        names = [s["setting"] for s in r["eval"]["settings"]]
        assert names == [s.name for s in bg.SETTINGS]
        default = bg.eval_row(r)
        assert default is not None and default["seconds"] > 0
        assert 0 <= default["sample_recall@20"] <= 1
    for key in ("prepare_s", "lightgcn_epoch_s", "lmmrec_epoch_s", "eval_s"):
        assert key in res["exponents"]
    assert {"crossings", "ran_out", "block_crossings", "largest"} <= set(res["limits"])


@pytest.mark.filterwarnings("ignore:.*motivations cover")  # a 10 % share, by design
def test_measurement_at_tiny_sizes(tmp_path: Path) -> None:
    """The benchmark's own orchestration, phases run in this process."""
    sizes = [3000, 6000]
    opts = bg.Options(warmup=1, steps=2, eval_users=64, epoch_cap=60, eval_cap=30)
    res = bg.collect(sizes, opts, yelp=False, run=bg.in_process, runs=tmp_path / "runs",
                     command="test")
    _check_results(res, sizes)
    bg.write_results(res, tmp_path / "out")
    back = json.loads((tmp_path / "out" / "growth.json").read_text())
    assert back["sizes"][0]["prepare"]["n_interactions"] == 3000
    md = (tmp_path / "out" / "growth.md").read_text()
    for must in ("Shared machine", "## Growth exponents", "## Where it runs out",
                 "synthetic 10^3.48", "synthetic 10^3.78", "LightGCN s/epoch"):
        assert must in md, must
    assert (tmp_path / "out" / "growth.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*motivations cover")
def test_measurement_in_guarded_child_processes(tmp_path: Path) -> None:
    """The real path: every phase in a fresh interpreter under the address-space guard."""
    sizes = [3000, 6000]
    opts = bg.Options(warmup=1, steps=2, eval_users=64, epoch_cap=60, eval_cap=30)
    res = bg.collect(sizes, opts, yelp=False, runs=tmp_path / "runs", command="test")
    _check_results(res, sizes)
    for r in res["sizes"]:
        for phase in ("prepare", "base", "lmmrec", "eval"):
            part = r[phase]
            assert 0 < part["guard_gib"] <= opts.guard_gib
            assert part["baseline_rss_mib"] <= part["peak_rss_mib"] < 4096

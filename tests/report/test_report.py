"""The HTML report: plots of the runs' real data, the test table, explained examples, and a
render in headless Chromium."""

from __future__ import annotations

import base64
import html
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from lmmrec.report.build import build_report

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def report(lmmrec_run, base_run):
    return build_report([lmmrec_run, base_run])


def read_log(run: Path) -> list[dict]:
    return [json.loads(ln) for ln in (run / "log.jsonl").read_text().splitlines() if ln.strip()]


def decode_png(data: bytes) -> Image.Image:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    img = Image.open(io.BytesIO(data))
    img.load()
    assert img.format == "PNG" and img.width > 200 and img.height > 150
    return img


def test_plots_are_real_pngs_of_the_runs_data(report, lmmrec_run, base_run):
    assert [r.method for r in report.runs] == ["base", "lmmrec"]  # baselines first
    for n, run in enumerate(report.runs):
        log = read_log(run.path)
        losses = [r for r in log if "loss" in r]
        vals = [r for r in log if "val" in r]
        epochs = json.loads((run.path / "config.json").read_text())["train"]["max_epochs"]
        assert len(losses) == epochs
        loss = report.plots[f"{n}:loss"]
        decode_png(loss.png)
        # every named term, total too; alignment terms only on the epochs that aligned
        # (align.every counts steps, and these tiny runs have one step an epoch)
        assert set(loss.series) == {t for r in losses for t in r["loss"]}
        assert len(loss.series["bpr"][0]) == len(loss.series["total"][0]) == epochs
        for term, (xs, ys) in loss.series.items():
            assert xs == [r["epoch"] for r in losses if term in r["loss"]]
            assert ys == pytest.approx([r["loss"][term] for r in losses if term in r["loss"]])
        val = report.plots[f"{n}:val"]
        decode_png(val.png)
        assert "recall@20" in val.series
        for key, (xs, ys) in val.series.items():
            assert xs == [r["epoch"] for r in vals]
            assert ys == pytest.approx([r["val"][key] for r in vals])
    assert "mcs" in report.plots["1:loss"].series  # the aligned run's own terms
    assert "mcs" not in report.plots["0:loss"].series
    test = report.plots["test"]
    decode_png(test.png)
    for run in report.runs:
        metrics = json.loads((run.path / "metrics.json").read_text())
        assert test.series[run.label][1] == pytest.approx(
            [metrics["test"][k] for k in ("recall@20", "ndcg@20", "hit@20")])


def test_html_is_offline_and_holds_the_table_and_plots(report):
    page = report.html
    # nothing outside the page: no links, scripts or remote images
    assert not re.search(r"(src|href)\s*=\s*\"(?!data:)", page)
    assert "<script" not in page and "http://" not in page and "https://" not in page
    uris = re.findall(r"src=\"data:image/png;base64,([A-Za-z0-9+/=]+)\"", page)
    assert len(uris) == len(report.plots) == 5
    for u in uris:
        decode_png(base64.b64decode(u))
    for run in report.runs:
        metrics = json.loads((run.path / "metrics.json").read_text())
        for key in ("recall@20", "ndcg@20", "hit@10"):
            assert f"{metrics['test'][key]:.4f}" in page
        assert run.label in page


def test_explained_examples_are_grounded(report, lmmrec_run, recommender):
    assert list(report.examples) == [1]  # only the run with motivations
    assert report.runs[1].path == lmmrec_run
    rec = recommender  # loaded from lmmrec_run
    p = rec.profiles
    ex = report.examples[1]
    assert len(ex) == 3
    n = 0
    for e in ex:
        u = rec.user_index(e["user"])
        user_ph = {p.phrases[j] for j in p.user_pos.getrow(u).indices}
        assert user_ph
        for it in e["items"]:
            item_ph = {p.phrases[j] for j in p.item.getrow(rec.item_index(it["item"])).indices}
            for m in it["matches"]:
                assert m["user_phrase"] in user_ph and m["item_phrase"] in item_ph
                n += 1
            assert html.escape(it["reason"]) in report.html
        assert f"user {e['user']}" in report.html
    assert n > 0


def chromium() -> str:
    """The Chromium binary; installed from Debian if missing. Missing = failure, not skip."""
    path = shutil.which("chromium") or ("/usr/bin/chromium"
                                         if os.path.exists("/usr/bin/chromium") else None)
    if path is None and shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=300)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], capture_output=True,
                       timeout=600)
        path = shutil.which("chromium")
    if path is None:
        pytest.fail("chromium is not installed and could not be installed "
                    "(apt-get install -y chromium)")
    return path


@pytest.mark.slow
def test_report_renders_in_headless_chromium(lmmrec_run, base_run, tmp_path):
    from lmmrec.cli.main import main

    out = tmp_path / "report.html"
    main(["report", str(lmmrec_run), str(base_run), "--out", str(out)])
    assert out.exists() and out.stat().st_size > 10_000
    shot = tmp_path / "shot.png"
    cmd = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
           f"--screenshot={shot}", "--window-size=1200,2000", out.resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HOME": str(tmp_path)})
    assert shot.exists(), proc.stderr[-2000:]
    img = decode_png(shot.read_bytes()).convert("RGB")
    assert img.size == (1200, 2000)
    colours = img.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # text, tables and plots, not blank
    white = sum(c for c, rgb in colours if rgb == (255, 255, 255))
    assert white < 0.97 * img.width * img.height
    # the plots really are painted: the matplotlib default blue of the first series
    assert any(abs(r - 31) < 12 and abs(g - 119) < 12 and abs(b - 180) < 12
               for _, (r, g, b) in colours)

"""Extraction quality: against human labels (SemEval-2014 Task 4) and on released artifacts.

    python benchmarks/bench_motivations.py semeval --prompt review_v2n [--n 300] [--seed 2026]
    python benchmarks/bench_motivations.py artifacts [--releases releases/motivations]
    python benchmarks/bench_motivations.py report     # results/motivations.md from the JSONs

``semeval`` runs the real extraction path on a seeded sample of ``--n`` sentences per domain
(laptop, restaurant) of ``$LMMREC_DATA_DIR/semeval14-absa``: the sentences are written as a
review table (one user and one item per sentence, no rating), prepared with
``lmmrec data prepare --format table --kcore 0 --split 1:0:0``, extracted with
``lmmrec extract --prompt P`` (the local model, as a user runs it) and exported with
``lmmrec extract export``; the exported phrases are scored. Run it on an otherwise idle
machine: reviews/min is part of the result.

``artifacts`` needs no LLM: it scores each released artifact against its dataset's review
text (prepared under ``--work``; needs ``$LMMREC_DATA_DIR``).

Matching rules (the scorer's, :mod:`lmmrec.llm.quality` and :mod:`lmmrec.llm.grounding`):

- content words: lowercase alphanumeric tokens minus a short stop-word list;
- two words match when equal after light suffix stripping, or sharing a 5-letter prefix, or
  one being a 4+-letter prefix of the other;
- aspect recall: a gold term (any polarity) is found when one extracted phrase (pos, neg or
  attr) contains every content word of the term;
- polarity accuracy: among gold positive/negative terms found in a pos or neg phrase, the
  share found on their own side only; terms found only in attr are reported apart;
- grounded: a phrase shares at least one content word with its sentence (review);
- prompt copy: a phrase that is not grounded and whose content words all occur in the
  prompt's instructions.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DOMAINS = {"laptop": "Laptop_Train_v2.xml", "restaurant": "Restaurants_Train_v2.xml"}
GOALS = {"grounded_share": 0.95, "prompt_copies": 0, "reviews_per_minute": 20.0}


def data_dir() -> Path:
    root = os.environ.get("LMMREC_DATA_DIR")
    if not root:
        sys.exit("set LMMREC_DATA_DIR (it holds semeval14-absa/ and the datasets)")
    return Path(root)


def lmmrec(*args: str) -> str:
    """The CLI as a user runs it; its stdout (JSON summaries)."""
    cmd = [sys.executable, "-m", "lmmrec", *args]
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(cmd)}")
    return done.stdout


def sample(n: int, seed: int) -> dict[str, list[Any]]:
    from lmmrec.llm.quality import read_semeval

    out = {}
    for domain, name in DOMAINS.items():
        sentences = read_semeval(data_dir() / "semeval14-absa" / name)
        out[domain] = random.Random(f"{seed}-{domain}").sample(sentences, n)
    return out


def run_semeval(prompt: str, n: int, seed: int, work: Path, parallel: int,
                threads: int = 0) -> dict[str, Any]:
    from lmmrec.llm.prompts import system_prompt
    from lmmrec.llm.quality import score_labelled
    from lmmrec.text.artifact import load_reviews

    chosen = sample(n, seed)
    folder = work / f"semeval-{n}-{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    table = folder / "sentences.csv"
    if not table.exists():
        with open(table, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["user_id", "item_id", "text"])
            for domain, sentences in chosen.items():
                for s in sentences:
                    key = f"{domain}-{s.sid}"
                    w.writerow([key, key, s.text])
    prepared = folder / "prepared"
    if not prepared.exists():
        lmmrec("data", "prepare", str(table), "--format", "table", "--kcore", "0",
               "--split", "1:0:0", "--out", str(prepared))
    store, art = folder / f"{prompt}.sqlite", folder / f"art-{prompt}"
    t0 = time.perf_counter()
    summary = json.loads(lmmrec("extract", "--data", str(prepared), "--store", str(store),
                                "--prompt", prompt, "--set", f"local.n_parallel={parallel}",
                                "--set", f"local.threads={threads}"))
    wall = time.perf_counter() - t0
    if art.exists():  # the benchmark's own output of an earlier run
        shutil.rmtree(art)
    manifest = json.loads(lmmrec("extract", "export", "--store", str(store), "--data",
                                 str(prepared), "--out", str(art)))
    reviews = load_reviews(art)
    extracted = {r.user_id: {f: list(getattr(r, f)) for f in ("pos", "neg", "attr")}
                 for r in reviews.itertuples(index=False)}
    result: dict[str, Any] = {"prompt": prompt, "n_per_domain": n, "seed": seed,
                              "run": summary["run"], "wall_s": round(wall, 1),
                              "export_counts": manifest, "domains": {}}
    for domain, sentences in chosen.items():
        keyed = [type(s)(f"{domain}-{s.sid}", s.text, s.aspects) for s in sentences]
        result["domains"][domain] = score_labelled(keyed, extracted, system_prompt(prompt))
    result["dropped"] = _dropped(art)
    return result


def _dropped(art: Path) -> dict[str, int] | None:
    m = json.loads((art / "manifest.json").read_text(encoding="utf-8"))
    return m.get("phrases_dropped")


def run_artifacts(releases: list[Path], work: Path) -> dict[str, Any]:
    import pandas as pd

    from lmmrec.data.dataset import PreparedDataset
    from lmmrec.data.leakage import extraction_reviews
    from lmmrec.llm.prompts import system_prompt
    from lmmrec.llm.quality import score_artifact
    from lmmrec.text.artifact import load_reviews, read_manifest

    out: dict[str, Any] = {}
    arts = [p for r in releases for p in sorted(r.iterdir()) if (p / "manifest.json").exists()]
    for art in arts:
        m = read_manifest(art)
        name = m["dataset"]
        prepared = work / "prepared" / name
        if not prepared.exists():
            lmmrec("data", "prepare", name, "--out", str(prepared))
        ds = PreparedDataset.load(prepared)
        reviews = extraction_reviews(ds)
        ratings = ds.interactions[["user", "item", "rating"]]
        reviews = reviews.merge(ratings, on=["user", "item"], how="left")
        headline = reviews["title"].fillna("").astype(str) if "title" in reviews else ""
        reviews["seen"] = (headline + " " + reviews["text"].fillna("").astype(str)).str.strip()
        key = reviews.set_index(["user_id", "item_id"])
        ex = load_reviews(art)
        ex = ex.merge(key[["seen", "rating"]].reset_index(), on=["user_id", "item_id"],
                      how="inner")
        rows = [{"text": r.seen, "rating": None if pd.isna(r.rating) else float(r.rating),
                 "pos": list(r.pos), "neg": list(r.neg), "attr": list(r.attr)}
                for r in ex.itertuples(index=False)]
        scale = float(ds.interactions["rating"].max())
        res = score_artifact(rows, system_prompt(m["prompt_version"]), scale)
        out[f"{name}:{m['prompt_version']}"] = {"dataset": name, "folder": str(art),
                                                 "prompt_version": m["prompt_version"], **res}
    return out


def write_json(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / name
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def report() -> Path:
    """benchmarks/results/motivations.md from every motivations-*.json."""
    lines = ["# Motivation extraction quality", "",
             "Made by `python benchmarks/bench_motivations.py report` from the JSON files "
             "beside it (`semeval --prompt P` and `artifacts` runs); matching rules in the "
             "benchmark's docstring.", ""]
    sem = sorted(RESULTS.glob("motivations-semeval-*.json"))
    if sem:
        lines += ["## Against human labels (SemEval-2014 Task 4 training sentences)", "",
                  "| prompt | domain | n | aspect recall | polarity acc. | polar found | "
                  "grounded | prompt copies | phrases/sent. | empty | reviews/min | machine |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for path in sem:
            r = json.loads(path.read_text(encoding="utf-8"))
            rpm = r["run"].get("reviews_per_minute")
            for d, s in r["domains"].items():
                lines.append(
                    f"| {r['prompt']} | {d} | {s['sentences']} | {_pct(s['aspect_recall'])} | "
                    f"{_pct(s['polarity_accuracy'])} | {s['polar_terms_found_in_pos_or_neg']} | "
                    f"{_pct(s['grounded_share'])} | {s['prompt_copies']} | "
                    f"{s['phrases_per_sentence']} | {s['empty_answers']} | {rpm} | "
                    f"{r.get('machine', 'alone')} |")
        lines += ["", "reviews/min: the whole run (both domains), as `lmmrec extract` "
                  "reported it, on the machine as described (a shared machine's rate says "
                  "little about the prompt; `bench_extract.py` times extraction alone).", ""]
        lines += _goals([json.loads(p.read_text(encoding="utf-8")) for p in sem])
    arts = RESULTS / "motivations-artifacts.json"
    if arts.exists():
        a = json.loads(arts.read_text(encoding="utf-8"))
        lines += ["## Released artifacts (no labels)", "",
                  "| artifact | reviews | phrases | grounded | prompt copies | neg share, "
                  "low rating | neg share, top rating | verdicts in pos | "
                  "distinct pos / neg / attr |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for key, r in a.items():
            d = r["distinct_phrases"]
            verdicts = (r.get("verdict_share_by_field") or {}).get("pos")
            lines.append(f"| {key} | {r['reviews']} | {r['phrases']} | "
                         f"{_pct(r['grounded_share'])} | {r['prompt_copies']} | "
                         f"{_pct(r['neg_share_by_rating']['low'])} | "
                         f"{_pct(r['neg_share_by_rating']['high'])} | {_pct(verdicts)} | "
                         f"{d['pos']} / {d['neg']} / {d['attr']} |")
        lines += ["", "Most frequent phrases per field:", ""]
        for key, r in a.items():
            lines.append(f"- **{key}**")
            for f, top in r["top_phrases"].items():
                shown = ", ".join(f"{p} ({c})" for p, c in top[:8])
                lines.append(f"  - {f}: {shown}")
        lines.append("")
    path = RESULTS / "motivations.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


GOAL_DOMAIN, GOAL_GROUNDED, GOAL_RATE = "laptop", 0.95, 20.0


def _goals(runs: list[dict[str, Any]]) -> list[str]:
    """Each newer prompt against the v1 baseline on the laptop sample, and its quiet speed
    (`bench_extract.py`'s extract-<prompt>-w1-p16.json; v1's is extract-w1-p16-b.json)."""
    by = {r["prompt"]: r["domains"].get(GOAL_DOMAIN) for r in runs}
    base = by.get("review_v1")
    if base is None:
        return []
    out = [f"### Goals on the {GOAL_DOMAIN} sample (against review_v1)", "",
           "| prompt | grounded ≥ 95 % | prompt copies = 0 | aspect recall vs v1 | "
           "polarity acc. vs v1 | reviews/min quiet (steady), goal ≥ 20 |",
           "|---|---|---|---|---|---|"]
    for prompt, d in by.items():
        if d is None:
            continue
        speed = _quiet_speed(prompt)
        rate = ("-" if speed is None else
                f"{speed[0]:.1f} ({speed[1]:.1f}): {'met' if speed[1] >= GOAL_RATE else 'missed'}")
        g = d["grounded_share"]
        out.append(
            f"| {prompt} | {_pct(g)}: {'met' if g >= GOAL_GROUNDED else 'missed'} | "
            f"{d['prompt_copies']}: {'met' if d['prompt_copies'] == 0 else 'missed'} | "
            f"{_pct(d['aspect_recall'])} ({100 * (d['aspect_recall'] - base['aspect_recall']):+.1f} pt) | "
            f"{_pct(d['polarity_accuracy'])} "
            f"({100 * (d['polarity_accuracy'] - base['polarity_accuracy']):+.1f} pt) | {rate} |")
    return out + ["", "Quiet speed: `python benchmarks/bench_extract.py` on 128 amazon-mi-2014 "
                  "training reviews with nothing else running (its JSON files here).", ""]


def _quiet_speed(prompt: str) -> tuple[float, float] | None:
    # v1's rerun at the machine speed v2n's run saw (0.63x the reference: `machine_speed`)
    name = "extract-w1-p16-b.json" if prompt == "review_v1" else f"extract-{prompt}-w1-p16.json"
    path = RESULTS / name
    if not path.exists():
        return None
    r = json.loads(path.read_text(encoding="utf-8"))
    return float(r["reviews_per_minute"]), float(r.get("steady_reviews_per_minute")
                                                 or r["reviews_per_minute"])


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("semeval")
    s.add_argument("--prompt", default="review_v2n")
    s.add_argument("--n", type=int, default=300)
    s.add_argument("--seed", type=int, default=2026)
    s.add_argument("--parallel", type=int, default=16)
    s.add_argument("--threads", type=int, default=0,
                   help="the LLM's threads (0: every core); 1 leaves a core to other work")
    s.add_argument("--work", type=Path, default=Path("work/bench-motivations"))
    s.add_argument("--machine", default="alone",
                   help="what else ran meanwhile (recorded with the result)")
    a = sub.add_parser("artifacts")
    a.add_argument("--releases", type=Path, nargs="+",
                   default=[HERE.parent / "releases" / "motivations",
                            HERE.parent / "releases" / "motivations-v2"])
    a.add_argument("--work", type=Path, default=Path("work/bench-motivations"))
    sub.add_parser("report")
    args = ap.parse_args()
    if args.cmd == "semeval":
        res = run_semeval(args.prompt, args.n, args.seed, args.work, args.parallel,
                          args.threads)
        res["machine"] = args.machine
        res["llm_threads"] = args.threads or os.cpu_count()
        print(write_json(f"motivations-semeval-{args.prompt}.json", res))
    elif args.cmd == "artifacts":
        print(write_json("motivations-artifacts.json", run_artifacts(args.releases, args.work)))
    print(report())


if __name__ == "__main__":
    main()

"""Can a person trust the reasons? The share of phrases shown in recommendations' reasons
that come from the user's (or item's) own training reviews, or the item's listing, and pass
the grounding rule (:mod:`lmmrec.llm.grounding`), with reasons built from the artifact as
exported ("before") and from grounded profiles without bare verdicts ("great", "works
well"), as `recommend`, the service, the report and the demo now build them ("after").

    python benchmarks/bench_reasons.py [--dataset amazon-mi-2014] [--release motivations-v2]
                                       [--k 10] [--epochs 3]

Trains a short LightGCN + LMMRec run on the dataset's released motivations
(``releases/<release>/<dataset>``; the reasons' phrases do not depend on how long it trains,
only which items are shown), recommends top-k to every user and writes
``results/reasons-<dataset>.md`` (``reasons-<dataset>-v2.md`` for the v2 release) and
``.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def train(dataset: str, release: str, work: Path, epochs: int) -> Path:
    prepared, run = work / "prepared" / dataset, work / f"reasons-{dataset}-{release}"
    lm = [sys.executable, "-m", "lmmrec"]
    if not prepared.exists():
        subprocess.run([*lm, "data", "prepare", dataset, "--out", str(prepared)], check=True)
    if not (run / "best.pt").exists():
        subprocess.run([*lm, "train", "--data", str(prepared), "--backbone", "lightgcn",
                        "--method", "lmmrec", "--motivations",
                        str(ROOT / "releases" / release / dataset), "--out", str(run),
                        "--set", f"train.max_epochs={epochs}", "--set", "train.progress=false"],
                       check=True)
    return run


def measure(rec: Any, k: int) -> tuple[dict[str, Any], dict[str, list[str]],
                                       set[tuple[str, int]], set[tuple[str, int]]]:
    """Counts, every user's reasons, and the (user, rank) of reasons showing a phrase that
    is not grounded in its own reviews, and of those showing a bare verdict."""
    from lmmrec.llm.grounding import is_grounded, is_verdict
    from lmmrec.text.profiles import own_texts

    by_user, by_item, listing = own_texts(rec.ds)
    shown = ok = with_reason = n = verdicts = 0
    reasons: dict[str, list[str]] = {}
    bad: set[tuple[str, int]] = set()
    judged: set[tuple[str, int]] = set()
    for user_id in rec.user_ids:
        u = rec.user_index(user_id)
        out = rec.recommend(user_id, k=k)
        reasons[user_id] = [r.reason for r in out]
        for rank, r in enumerate(out):
            n += 1
            with_reason += bool(r.matches)
            i = rec.item_index(r.item)
            for m in r.matches:
                shown += 2
                v = is_verdict(m.user_phrase) + is_verdict(m.item_phrase)
                verdicts += v
                if v:
                    judged.add((user_id, rank))
                good = (any(is_grounded(m.user_phrase, t) for t in by_user.get(u, [])),
                        any(is_grounded(m.item_phrase, t)
                            for t in [*by_item.get(i, []), listing[i]]))
                ok += sum(good)
                if not all(good):
                    bad.add((user_id, rank))
    return ({"recommendations": n, "with_phrase_reason": with_reason, "phrases_shown": shown,
             "grounded_in_own_reviews": ok, "share": round(ok / max(1, shown), 4),
             "verdicts_shown": verdicts},
            reasons, bad, judged)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="amazon-mi-2014")
    ap.add_argument("--release", default="motivations",
                    help="folder under releases/: motivations (v1) or motivations-v2")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--work", type=Path, default=Path("work/bench-reasons"))
    ap.add_argument("--examples", type=int, default=4)
    args = ap.parse_args()
    from lmmrec.explain.recommender import Recommender
    from lmmrec.text.profiles import amass

    run = train(args.dataset, args.release, args.work, args.epochs)
    rec = Recommender.load(run)  # grounded profiles, no verdicts
    after, reasons_after, _, _ = measure(rec, args.k)
    rec.profiles = amass(rec.ds, rec.cfg.motivations)  # the artifact as exported
    before, reasons_before, bad, judged = measure(rec, args.k)
    changed = [(u, b, a) for u in rec.user_ids
               for b, a in zip(reasons_before[u], reasons_after[u], strict=True) if b != a]
    # examples: reasons that showed an ungrounded phrase (or else a verdict) before, the
    # ranking unchanged
    shown = [(u, reasons_before[u][r], reasons_after[u][r]) for u, r in sorted(bad or judged)
             if reasons_before[u][r] != reasons_after[u][r]]
    result = {"dataset": args.dataset, "release": args.release, "k": args.k, "run": str(run),
              "before": before,
              "after": after, "reasons_changed": len(changed),
              "reasons_with_ungrounded_phrase_before": len(bad),
              "reasons_with_verdict_before": len(judged),
              "examples": [{"user": u, "before": b, "after": a}
                           for u, b, a in shown[:: max(1, len(shown) // args.examples)]
                           [:args.examples]]}
    suffix = "" if args.release == "motivations" else "-" + args.release.split("-")[-1]
    out = HERE / "results" / f"reasons-{args.dataset}{suffix}"
    tmp = out.with_suffix(f".json.tmp{os.getpid()}")
    tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, out.with_suffix(".json"))
    lines = [f"# Reasons grounded in the user's and item's own reviews: {args.dataset}", "",
             f"Made by `python benchmarks/bench_reasons.py --dataset {args.dataset} "
             f"--release {args.release} --k {args.k}`: top-{args.k} for every user of a short "
             f"LightGCN + LMMRec run on `releases/{args.release}/{args.dataset}`.", "",
             "| reasons built from | recommendations | with a phrase reason | phrases shown | "
             "grounded in own reviews | share | bare verdicts shown |",
             "|---|---|---|---|---|---|---|"]
    for name, r in (("artifact as exported (before)", before),
                    ("grounded profiles, no verdicts (after)", after)):
        lines.append(f"| {name} | {r['recommendations']} | {r['with_phrase_reason']} | "
                     f"{r['phrases_shown']} | {r['grounded_in_own_reviews']} | "
                     f"{100 * r['share']:.1f} % | {r['verdicts_shown']} |")
    lines += ["", f"{len(changed)} reasons changed; {len(bad)} showed a phrase not grounded "
              f"in its own reviews before, {len(judged)} a bare verdict. Examples of the "
              f"{'first' if bad else 'second'}:", ""]
    for e in result["examples"]:
        lines += [f"- user `{e['user']}`", f"  - before: {e['before']}",
                  f"  - after: {e['after']}"]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(out.with_suffix(".md"))


if __name__ == "__main__":
    main()

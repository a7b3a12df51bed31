"""A seeded synthetic catalogue taken through lmmrec's own pipeline to a served run folder.

    python benchmarks/synth_catalogue.py --out runs/bench/serve-100k [--items 100000]

What a user with a large shop would have: RecBole atomic files (``synth.inter`` with review
text, ``synth.item`` with titles) -> ``lmmrec data prepare`` -> a motivation artifact ->
``lmmrec train --method lmmrec`` (LightGCN, 1 epoch: only the serving is measured).

The data: items belong to topics; item popularity follows a power law (every item has at
least one interaction, so the catalogue keeps every item); each user leans to two topics.
Each review names the motivation the user chose the item for and two of the item's own
attributes, so every phrase of the artifact is grounded in its review, as the reasons
require. Motivation phrases ("adjective noun") belong to topics; their vectors are a topic
group centre, a topic centre and seeded noise (cosine ~0.74 within a topic, ~0.47
within a group of related topics, ~0 across groups), standing in for
`lmmrec embed` (no model run over 2,000 made-up phrases). The LLM extraction is replaced by
the phrases the review was written from, for a seeded share of the reviews.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SEED = 2024
TOPICS = 50
GROUPS = 10  # groups of related topics
DIM = 384  # all-MiniLM-L6-v2's width, so matching costs what it does on real phrases
ADJ = ("soft warm light heavy quiet bright compact sturdy durable cheap gentle strong fresh "
       "smooth crisp rich mild sharp quick easy clean cool natural classic modern simple "
       "elegant rugged flexible portable spacious vivid steady precise cozy lasting sleek "
       "glossy matte vintage robust").split()
NOUN = ("fabric sound battery screen grip scent texture flavor finish color fit handle "
        "lens blade strap cushion frame motor charger cable speaker keyboard bottle lid "
        "zipper pocket sole heel collar sleeve stitching coating filter nozzle brush "
        "bristle wheel pedal seat mattress pillow blanket lamp bulb switch knob dial "
        "display case").split()
BRANDS = ("Kestrel Alder Birch Corvid Dune Ember Fjord Gale Heron Iris Juniper Kite Linden "
          "Marlow Nimbus Onyx Pike Quill Rowan Sable").split()


def popularity(n: int, alpha: float, rng: np.random.Generator) -> np.ndarray:
    """Power-law weights (rank^-alpha) over a random order of ``n`` items."""
    w = np.arange(1, n + 1, dtype=np.float64) ** -alpha
    return w[rng.permutation(n)]


def interactions(n_users: int, n_items: int, n_inter: int, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(users, items, item topics, user topics [n_users, 2]): every item once (to a random
    user), then power-law picks, 80 % from one of the user's two topics."""
    item_topic = rng.integers(TOPICS, size=n_items)
    user_topics = rng.integers(TOPICS, size=(n_users, 2))
    pop = popularity(n_items, 0.9, rng)
    per_user = np.maximum(5, rng.lognormal(0, 1, n_users))
    per_user = np.round(per_user * (n_inter - n_items) / per_user.sum()).astype(np.int64)
    users = np.repeat(np.arange(n_users), per_user)
    topic = np.where(rng.random(len(users)) < 0.8,
                     user_topics[users, rng.integers(2, size=len(users))],
                     rng.integers(TOPICS, size=len(users)))
    items = np.empty(len(users), dtype=np.int64)
    for t in range(TOPICS):  # within a topic, by popularity
        at, of = np.flatnonzero(topic == t), np.flatnonzero(item_topic == t)
        cdf = np.cumsum(pop[of])
        pick = np.searchsorted(cdf, rng.random(len(at)) * cdf[-1]).clip(max=len(of) - 1)
        items[at] = of[pick]
    users = np.concatenate([rng.integers(n_users, size=n_items), users])
    items = np.concatenate([np.arange(n_items), items])
    _, first = np.unique(users * n_items + items, return_index=True)
    first.sort()
    return users[first], items[first], item_topic, user_topics


def phrase_book(rng: np.random.Generator) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(phrases, topic of each, unit vectors float32 [P, DIM])."""
    phrases = [f"{a} {n}" for a in ADJ for n in NOUN]
    topic = rng.permutation(len(phrases)) % TOPICS

    def units(n: int) -> np.ndarray:
        v = rng.standard_normal((n, DIM))
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    # topic t lies in group t % GROUPS: cosine ~0.74 within a topic, ~0.47 within a group
    group, centre, noise = units(GROUPS), units(TOPICS), units(len(phrases))
    vecs = 0.8 * group[topic % GROUPS] + 0.6 * centre[topic] + 0.6 * noise
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return phrases, topic, vecs.astype(np.float32)


def pick_in_topic(topics: np.ndarray, by_topic: list[np.ndarray], rng: np.random.Generator
                  ) -> np.ndarray:
    """One random phrase id of each given topic."""
    sizes = np.array([len(b) for b in by_topic])
    r = (rng.random(len(topics)) * sizes[topics]).astype(np.int64)
    return np.array([by_topic[t][j] for t, j in zip(topics.tolist(), r.tolist(),
                                                     strict=True)])


def write_raw(folder: Path, n_users: int, n_items: int, n_inter: int, seed: int) -> dict:
    """synth.inter + synth.item (RecBole atomic files) and the review phrases behind them."""
    rng = np.random.default_rng(seed)
    users, items, item_topic, _ = interactions(n_users, n_items, n_inter, rng)
    phrases, ph_topic, vecs = phrase_book(rng)
    by_topic = [np.flatnonzero(ph_topic == t) for t in range(TOPICS)]
    item_attr = np.stack([pick_in_topic(item_topic, by_topic, rng) for _ in range(4)], 1)
    pos = pick_in_topic(item_topic[items], by_topic, rng)  # the motivation for the pick
    a = rng.integers(4, size=(len(items), 2))
    attr = item_attr[items[:, None], a]
    ph = np.array(phrases, dtype=object)
    text = [f"bought it for the {p} ; {x} and {y} as promised"
            for p, x, y in zip(ph[pos], ph[attr[:, 0]], ph[attr[:, 1]], strict=True)]
    folder.mkdir(parents=True, exist_ok=True)
    uid = np.char.add("U", np.char.zfill(users.astype(str), 6))
    iid = np.char.add("I", np.char.zfill(items.astype(str), 6))
    pd.DataFrame({"user_id:token": uid, "item_id:token": iid,
                  "rating:float": rng.integers(3, 6, size=len(items)),
                  "timestamp:float": 1.6e9 + rng.integers(0, 10 ** 8, size=len(items)),
                  "text:token_seq": text}).to_csv(folder / "synth.inter", sep="\t",
                                                  index=False)
    brand = np.array(BRANDS)[rng.integers(len(BRANDS), size=n_items)]
    noun = np.array(NOUN)[np.array([int(p) % len(NOUN) for p in item_attr[:, 0]])]
    titles = [f"{b} {n} {i:06d}" for i, (b, n) in enumerate(zip(brand, noun, strict=True))]
    pd.DataFrame({"item_id:token": np.char.add("I", np.char.zfill(
        np.arange(n_items).astype(str), 6)), "title:token_seq": titles}).to_csv(
        folder / "synth.item", sep="\t", index=False)
    return {"user_id": uid, "item_id": iid, "pos": pos, "attr": attr, "phrases": phrases,
            "vecs": vecs}


def write_artifact(out: Path, data: Path, raw: dict, share: float, seed: int) -> None:
    """The motivation artifact of a seeded ``share`` of the reviews, embedded."""
    from lmmrec.data.dataset import PreparedDataset
    from lmmrec.io import atomic_write_bytes
    from lmmrec.layout import ARTIFACT, FINGERPRINT
    from lmmrec.text import artifact

    ds = PreparedDataset.load(data, require_splits=False)
    rng = np.random.default_rng(seed + 1)
    rows = np.flatnonzero(rng.random(len(raw["pos"])) < share)
    ph = np.array(raw["phrases"], dtype=object)
    n = len(rows)
    df = pd.DataFrame({
        "input_hash": [hashlib.sha256(f"{u}|{i}".encode()).hexdigest()[:16] for u, i in
                       zip(raw["user_id"][rows], raw["item_id"][rows], strict=True)],
        "user_id": raw["user_id"][rows], "item_id": raw["item_id"][rows],
        "status": "ok", "why": "stated in the review",
        "pos": [[p] for p in ph[raw["pos"][rows]]], "neg": [[] for _ in range(n)],
        "attr": [list(x) for x in ph[raw["attr"][rows]]],
        "prompt_tokens": 0, "output_tokens": 0, "cached_tokens": 0, "latency_s": 0.0,
        "attempts": 1, "error": ""})
    manifest = {"format": artifact.FORMAT, "dataset": ds.name, FINGERPRINT: ds.fingerprint,
                "model_id": "synthetic (the phrases each review was written from)",
                "prompt_version": "review_v1",
                "embedding": {"kind": "synthetic", "model": f"seeded topic vectors {DIM}-d",
                              "dim": DIM, "n_texts": len(ph), "dtype": "float16"}}
    artifact.write_artifact(out, df, manifest)
    texts = pd.DataFrame({ARTIFACT.phrase_text: raw["phrases"]})
    tmp = out / "phrases.tmp.parquet"
    texts.to_parquet(tmp, index=False)
    atomic_write_bytes(out / ARTIFACT.phrases, tmp.read_bytes())
    tmp.unlink()
    np.save(out / ARTIFACT.embeddings, raw["vecs"].astype(np.float16))


def lmmrec(*args: object) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    subprocess.run([sys.executable, "-m", "lmmrec.cli.main", *map(str, args)], check=True,
                   env=env)


def build(out: Path, n_users: int, n_items: int, n_inter: int, share: float = 0.5,
          epochs: int = 1, seed: int = SEED) -> Path:
    """The run folder ``out`` (inputs beside it in ``out``-inputs); steps already done are
    kept, so a rerun after a crash resumes."""
    work = out.parent / (out.name + "-inputs")
    raw_dir, data, art = work / "raw", work / "prepared", work / "motivations"
    if (out / "best.pt").exists():
        return out
    t0 = time.time()
    raw = write_raw(raw_dir, n_users, n_items, n_inter, seed)
    print(f"raw: {len(raw['pos']):,} interactions ({time.time() - t0:.0f} s)", file=sys.stderr)
    if not (data / "manifest.json").exists():
        lmmrec("data", "prepare", raw_dir, "--out", data, "--format", "recbole",
               "--overwrite")
    if not (art / "embeddings.npy").exists():
        write_artifact(art, data, raw, share, seed)
    lmmrec("train", "--out", out, "--backbone", "lightgcn", "--data", data, "--method",
               "lmmrec", "--motivations", art, "--set", f"train.max_epochs={epochs}",
               "--set", "train.progress=false", "--set", "eval.item_chunk=32768")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "bench" / "serve-100k")
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--users", type=int, default=30_000)
    ap.add_argument("--interactions", type=int, default=1_000_000)
    ap.add_argument("--epochs", type=int, default=1)
    args = ap.parse_args()
    print(build(args.out, args.users, args.items, args.interactions, epochs=args.epochs))


if __name__ == "__main__":
    main()

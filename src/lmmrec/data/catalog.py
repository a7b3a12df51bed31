"""Known datasets in one table: where they live, how to read them, default settings.

``subdir`` is relative to ``$LMMREC_DATA_DIR``; the small datasets also ship inside the
package (``lmmrec/datasets/``) and are used when ``$LMMREC_DATA_DIR`` has no copy.
``downloads`` lists (file, url, sha256) of the public originals; a None sha256 means that
original is not pinned here (its checksum is still recorded in the prepared manifest).
``archive`` is an original published as a split tar.gz, of which only some files are kept.
Defaults follow RLMRec: 5-core, 3:1:1, seed 2024 (a source with a split of its own
keeps it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from lmmrec.errors import DataError

DEFAULT_SPLIT = "3:1:1"
DEFAULT_SEED = 2024


@dataclass(frozen=True)
class Archive:
    """A tar.gz published in parts (concatenated in order); ``members`` are (path suffix
    inside the archive, file name to write, sha256) of the files kept from it."""

    parts: tuple[str, ...]
    members: tuple[tuple[str, str, str], ...]
    page: str = ""


@dataclass(frozen=True)
class Known:
    subdir: str
    format: str
    kcore: int = 0
    split: str | None = None  # None: the source's own split, else DEFAULT_SPLIT
    seed: int = DEFAULT_SEED
    downloads: tuple[tuple[str, str, str | None], ...] = field(default_factory=tuple)
    note: str = ""
    archive: Archive | None = None
    page: str = ""  # where a person finds the original (named in offline errors)


_UCSD = "https://mcauleylab.ucsd.edu/public_datasets/data"
_SNAP = "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles"
# A fixed commit, so the bytes behind the URL cannot change under the pinned sums.
_ABSA = ("https://raw.githubusercontent.com/gaozhengjie/ABSA-Data-Set/"
         "20b1029d059e423d9d95ce5913509285cf4d835b/"
         "V2%E5%8E%9F%E7%89%88/SemEval'14-ABSA-TrainData_v2%20%26%20AnnotationGuidelines")
_RLMREC_PARTS = tuple(f"https://github.com/HKUDS/RLMRec/raw/main/data/data.tar.gz{i:02d}"
                      for i in range(10))


def _rlmrec(name: str, sums: tuple[str, str, str]) -> Archive:
    files = ("trn_mat.pkl", "val_mat.pkl", "tst_mat.pkl")
    return Archive(_RLMREC_PARTS, tuple((f"{name}/{f}", f, s) for f, s in zip(files, sums, strict=True)),
                   page="https://github.com/HKUDS/RLMRec (data/)")


# Steam: the copy this project tests with is a one-review-per-line re-encoding of UCSD's
# files, so its sums cannot pin the originals; the reader takes either layout.
KNOWN: dict[str, Known] = {
    "steam-au": Known("steam-au", "steam-au", kcore=5, downloads=(
        ("australian_user_reviews.json.gz", f"{_UCSD}/steam/australian_user_reviews.json.gz",
         None),
        ("steam_games.json.gz", "https://cseweb.ucsd.edu/~wckang/steam_games.json.gz", None),
    ), page="https://cseweb.ucsd.edu/~jmcauley/datasets.html#steam_data"),
    "amazon-mi-2014": Known("amazon-mi-2014", "amazon2014", kcore=5, downloads=(
        ("reviews_Musical_Instruments_5.json.gz",
         f"{_SNAP}/reviews_Musical_Instruments_5.json.gz",
         "03f9cc27ae13a454cb4ea6cb620fb10546cc1194ef921441d1c5f34addff2748"),
    ), page="https://jmcauley.ucsd.edu/data/amazon/"),
    "amazon-beauty-2023-mini": Known("amazon-beauty-2023-mini", "amazon2023", kcore=0,
                                     note="a small subset; it ships with lmmrec"),
    "amazon-beauty-2023": Known("amazon-beauty-2023", "amazon2023", kcore=5, downloads=(
        ("All_Beauty.jsonl.gz",
         f"{_UCSD}/amazon_2023/raw/review_categories/All_Beauty.jsonl.gz", None),
        ("meta_All_Beauty.jsonl.gz",
         f"{_UCSD}/amazon_2023/raw/meta_categories/meta_All_Beauty.jsonl.gz", None),
    ), page="https://amazon-reviews-2023.github.io/"),
    "rlmrec-amazon": Known("rlmrec-splits/amazon", "rlmrec", archive=_rlmrec("amazon", (
        "535cc15f915858a64249e3a893cceac9efe8e6f1ce17c08879a3c099c510b309",
        "90cd52a011f9b31081461a010e9bccb98d12a1dd7a7760085facbc7d1a2c46c3",
        "c279ce551d32536ed90d916212bc0b891ce4c189ea7cfa5e4051e0dbfc728d17"))),
    "rlmrec-yelp": Known("rlmrec-splits/yelp", "rlmrec", archive=_rlmrec("yelp", (
        "2306f5b9de8f3dd3342744d937a45b04abd22ede422304a549fb324e12e5f6bd",
        "33aaf3bd27bd25d7d3e8223700fbd2d5400feec217c9ce09c87785460bcb355b",
        "3007de4f5955223bf7752f59cadb3b069d92acb879987e7eee286f252772a564"))),
    # Not a recommendation dataset: a gold standard for what a review says about attributes.
    "semeval14-absa": Known("semeval14-absa", "", downloads=(
        ("Laptop_Train_v2.xml", f"{_ABSA}/Laptop_Train_v2.xml",
         "705a26e1c696f7d538b6fce70829f3d14b94a0d3e1d2c08ae98bf2c76bb1428e"),
        ("Restaurants_Train_v2.xml", f"{_ABSA}/Restaurants_Train_v2.xml",
         "223601da1bded6caa4ef9cf91a7007578141ca6d8ed50d5a5c217565f89d2fc5"),
    ), page="https://alt.qcri.org/semeval2014/task4/", note="aspect-annotated sentences; "
       "no users or items to prepare"),
}

# Shipped inside the package: small enough to make the demo and the headline table
# reproducible from a clone or a pip install with nothing else present.
EMBEDDED = Path(__file__).resolve().parents[1] / "datasets"


def data_root() -> Path | None:
    env = os.environ.get("LMMREC_DATA_DIR")
    return Path(env) if env else None


def embedded(name: str) -> Path | None:
    """The copy of ``name`` shipped with the package, if there is one."""
    k = KNOWN.get(name)
    path = EMBEDDED / k.subdir if k else None
    return path if path is not None and path.is_dir() else None


def locate(name: str) -> Path | None:
    """Folder of known dataset ``name``: ``$LMMREC_DATA_DIR``'s copy, else the shipped one."""
    root = data_root()
    if root is not None and (root / KNOWN[name].subdir).exists():
        return root / KNOWN[name].subdir
    return embedded(name)


def known_for(path: Path) -> tuple[str, Known] | None:
    """The catalog entry whose folder is ``path`` (matched on the trailing subdir)."""
    parts = path.resolve().parts
    for name, k in KNOWN.items():
        sub = tuple(Path(k.subdir).parts)
        if parts[-len(sub):] == sub:
            return name, k
    return None


def resolve(source: str) -> tuple[Path, str, Known | None]:
    """NAME or PATH -> (path, display name, catalog entry or None).

    A known NAME maps to ``$LMMREC_DATA_DIR/<subdir>``, else to the package's copy; any
    other NAME is tried as
    ``$LMMREC_DATA_DIR/NAME``; otherwise ``source`` is a path.
    """
    root = data_root()
    if source in KNOWN:
        k = KNOWN[source]
        if not k.format:
            raise DataError(f"{source} is not a recommendation dataset ({k.note})")
        path = locate(source)
        if path is None:
            where = f"no {root / k.subdir}" if root else "LMMREC_DATA_DIR is not set"
            raise DataError(f"dataset {source!r} not found ({where}): run `lmmrec data "
                            f"download {source}`, or copy its files into "
                            f"$LMMREC_DATA_DIR/{k.subdir}")
        return path, source, k
    if root is not None and not Path(source).is_absolute() and (root / source).exists():
        path = root / source
    else:
        path = Path(source)
    if not path.exists():
        raise DataError(f"not a known dataset ({', '.join(KNOWN)}) nor an existing path",
                        path=path)
    hit = known_for(path)
    return path, hit[0] if hit else path.name, hit[1] if hit else None

"""Known datasets in one table: where they live, how to read them, default settings.

``subdir`` is relative to ``$LMMREC_DATA_DIR``. ``downloads`` lists (file, url, sha256):
a None sha256 means the upstream file is not pinned here; its checksum is still recorded
in the prepared manifest. Defaults follow RLMRec: 5-core, 3:1:1, seed 2024 (a source
with a split of its own keeps it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from lmmrec.errors import DataError

DEFAULT_SPLIT = "3:1:1"
DEFAULT_SEED = 2024


@dataclass(frozen=True)
class Known:
    subdir: str
    format: str
    kcore: int = 0
    split: str | None = None  # None: the source's own split, else DEFAULT_SPLIT
    seed: int = DEFAULT_SEED
    downloads: tuple[tuple[str, str, str | None], ...] = field(default_factory=tuple)
    note: str = ""


_UCSD = "https://mcauleylab.ucsd.edu/public_datasets/data"
KNOWN: dict[str, Known] = {
    "steam-au": Known("steam-au", "steam-au", kcore=5, downloads=(
        ("australian_user_reviews.json.gz", f"{_UCSD}/steam/australian_user_reviews.json.gz",
         None),
        ("steam_games.json.gz", "https://cseweb.ucsd.edu/~wckang/steam_games.json.gz", None),
    )),
    "amazon-mi-2014": Known("amazon-mi-2014", "amazon2014", kcore=5, downloads=(
        ("reviews_Musical_Instruments_5.json.gz",
         "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/"
         "reviews_Musical_Instruments_5.json.gz",
         "03f9cc27ae13a454cb4ea6cb620fb10546cc1194ef921441d1c5f34addff2748"),
    )),
    "amazon-beauty-2023-mini": Known("amazon-beauty-2023-mini", "amazon2023", kcore=0,
                                     note="a local subset; no upstream file to download"),
    "amazon-beauty-2023": Known("amazon-beauty-2023", "amazon2023", kcore=5, downloads=(
        ("All_Beauty.jsonl.gz",
         f"{_UCSD}/amazon_2023/raw/review_categories/All_Beauty.jsonl.gz", None),
        ("meta_All_Beauty.jsonl.gz",
         f"{_UCSD}/amazon_2023/raw/meta_categories/meta_All_Beauty.jsonl.gz", None),
    )),
    "rlmrec-amazon": Known("rlmrec-splits/amazon", "rlmrec",
                           note="ships inside HKUDS/RLMRec's split archive data/data.tar.gz*"),
    "rlmrec-yelp": Known("rlmrec-splits/yelp", "rlmrec",
                         note="ships inside HKUDS/RLMRec's split archive data/data.tar.gz*"),
}


def data_root() -> Path | None:
    env = os.environ.get("LMMREC_DATA_DIR")
    return Path(env) if env else None


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

    A known NAME maps to ``$LMMREC_DATA_DIR/<subdir>``; any other NAME is tried as
    ``$LMMREC_DATA_DIR/NAME``; otherwise ``source`` is a path.
    """
    root = data_root()
    if source in KNOWN:
        k = KNOWN[source]
        if root is None:
            raise DataError(f"set LMMREC_DATA_DIR to find dataset {source!r} "
                            f"(expected under $LMMREC_DATA_DIR/{k.subdir})")
        path = root / k.subdir
        if not path.exists():
            raise DataError(f"dataset {source!r} not found (try `lmmrec data download "
                            f"{source}`)", path=path)
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

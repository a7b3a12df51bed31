"""RLMRec / SSLRec splits: ``trn_mat.pkl``, ``val_mat.pkl``, ``tst_mat.pkl`` (scipy COO).

A pickle can run code when loaded, so these are read with an Unpickler whose
``find_class`` admits only the numpy/scipy classes a sparse matrix needs; anything else
is a DataError naming the file and the class. The split is the file's: it is kept.
Raw ids are the matrix indices ("0".."n-1"), so dense ids equal them.
"""

from __future__ import annotations

import importlib
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lmmrec.data.readers._io import RawData, items_frame
from lmmrec.errors import DataError

FORMAT = "rlmrec"
FILES = {"train": "trn_mat.pkl", "val": "val_mat.pkl", "test": "tst_mat.pkl"}

_SPARSE = {"coo_matrix", "csr_matrix", "csc_matrix", "coo_array", "csr_array", "csc_array"}
_SPARSE_MODULES = {"scipy.sparse", "scipy.sparse._coo", "scipy.sparse._csr", "scipy.sparse._csc",
                   "scipy.sparse.coo", "scipy.sparse.csr", "scipy.sparse.csc"}
_NUMPY = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
}


class SafeUnpickler(pickle.Unpickler):
    """Resolves only sparse-matrix classes and the numpy pieces they are built from."""

    def __init__(self, file: io.BufferedIOBase, path: Path) -> None:
        super().__init__(file)
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        if module in _SPARSE_MODULES and name in _SPARSE:
            import scipy.sparse

            return getattr(scipy.sparse, name)
        if (module, name) in _NUMPY:
            if module.startswith("numpy.core"):  # numpy 2 renamed core -> _core
                module = "numpy._core" + module[len("numpy.core"):]
            try:
                return getattr(importlib.import_module(module), name)
            except ImportError:
                return getattr(importlib.import_module(module.replace("._core", ".core")), name)
        raise DataError(f"pickle refers to disallowed class {module}.{name} "
                        "(only scipy sparse matrices are accepted)", path=self.path)


def load_matrix(path: Path) -> Any:
    try:
        with open(path, "rb") as f:
            obj = SafeUnpickler(f, path).load()
    except DataError:
        raise
    except FileNotFoundError as e:
        raise DataError("file not found", path=path) from e
    except Exception as e:  # truncated or garbage pickles raise many kinds of errors
        raise DataError(f"unreadable pickle: {type(e).__name__}: {e}", path=path) from e
    if not hasattr(obj, "tocoo") or not hasattr(obj, "shape"):
        raise DataError(f"expected a scipy sparse matrix, got {type(obj).__name__}", path=path)
    return obj.tocoo()


def detect(folder: Path) -> bool:
    return (folder / FILES["train"]).exists()


def read(path: Path, **_: Any) -> RawData:
    folder = Path(path)
    parts, shapes, sources = [], [], []
    for split, name in FILES.items():
        p = folder / name
        if not p.exists():
            raise DataError(f"missing {name} (RLMRec splits need all of "
                            f"{', '.join(FILES.values())})", path=folder)
        m = load_matrix(p)
        shapes.append(m.shape)
        sources.append(p)
        parts.append(pd.DataFrame({"u": m.row.astype(np.int64), "i": m.col.astype(np.int64),
                                   "split": split}))
    n_users = max(s[0] for s in shapes)
    n_items = max(s[1] for s in shapes)
    df = pd.concat(parts, ignore_index=True)
    inter = pd.DataFrame({
        "user_id": df["u"].astype(str), "item_id": df["i"].astype(str),
        "rating": np.full(len(df), np.nan), "timestamp": np.full(len(df), -1, dtype=np.int64),
        "title": None, "text": None, "split": df["split"].astype(object),
    })
    if inter.empty:
        raise DataError("no interactions in any split", path=folder)
    items = items_frame({"raw_id": [str(i) for i in range(n_items)]})
    return RawData(inter, items, sources, FORMAT, presplit=True,
                   notes={"shape": [int(n_users), int(n_items)]})

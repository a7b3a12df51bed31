"""Recommender backbones, registered by name in one table.

`build_backbone(name, n_users, n_items, train, params)` validates `params` against the
backbone's own config model, so a misspelt key fails with its dotted path.
"""

from __future__ import annotations

from typing import Any

import scipy.sparse as sp

from lmmrec.config import build, registered

# name -> "module:Class"; imported on use so `import lmmrec.backbones` stays light.
REGISTRY: dict[str, str] = {
    "mf": "lmmrec.backbones.mf:MF",
    "lightgcn": "lmmrec.backbones.lightgcn:LightGCN",
    "gccf": "lmmrec.backbones.gccf:GCCF",
    "sgl": "lmmrec.backbones.sgl:SGL",
    "simgcl": "lmmrec.backbones.simgcl:SimGCL",
    "dccf": "lmmrec.backbones.dccf:DCCF",
}


def backbone_class(name: str) -> type:
    return registered(REGISTRY, name, "backbone", sorted(REGISTRY))


def backbone_config(name: str, params: dict[str, Any]) -> Any:
    """The backbone's typed config from a plain dict (without the `name` key)."""
    cls = backbone_class(name)
    return build(cls.Config, [{k: v for k, v in params.items() if k != "name"}],
                 source=f"backbone {name}", prefix="backbone.")


def build_backbone(name: str, n_users: int, n_items: int, train: sp.csr_matrix,
                   params: dict[str, Any] | None = None) -> Any:
    cfg = backbone_config(name, params or {})
    return backbone_class(name)(n_users, n_items, train, cfg)

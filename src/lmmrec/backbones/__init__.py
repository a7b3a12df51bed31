"""Recommender backbones, registered by name in one table.

`backbone_config(name, params)` validates `params` against the backbone's own config model
(a misspelt key fails with its dotted path); `build_backbone` builds it from that config.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lmmrec.registry import Registry

if TYPE_CHECKING:  # torch and scipy: `import lmmrec.backbones` stays light
    import scipy.sparse as sp

    from lmmrec.backbones.base import Backbone, BackboneConfig

# name -> "module:Class"; imported on use. Adding a backbone is one line here.
REGISTRY = Registry({
    "autocf": "lmmrec.backbones.autocf:AutoCF",
    "dccf": "lmmrec.backbones.dccf:DCCF",
    "gccf": "lmmrec.backbones.gccf:GCCF",
    "lightgcn": "lmmrec.backbones.lightgcn:LightGCN",
    "mf": "lmmrec.backbones.mf:MF",
    "sgl": "lmmrec.backbones.sgl:SGL",
    "simgcl": "lmmrec.backbones.simgcl:SimGCL",
}, what="backbone", prefix="backbone.", source="backbone {}")


def backbone_class(name: str) -> type:
    return REGISTRY.cls(name)


def backbone_config(name: str, params: dict) -> BackboneConfig:
    """The backbone's typed config from a plain dict (its `name` key is skipped)."""
    return REGISTRY.config(name, {k: v for k, v in params.items() if k != "name"})


def build_backbone(name: str, n_users: int, n_items: int, train: sp.csr_matrix,
                   cfg: BackboneConfig) -> Backbone:
    """Backbone ``name`` over the training graph, with its validated config."""
    cls = backbone_class(name)
    if not isinstance(cfg, cls.Config):  # a config validated for another backbone
        raise TypeError(f"backbone {name!r} needs a {cls.Config.__name__}, "
                        f"not {type(cfg).__name__}")
    return cls(n_users, n_items, train, cfg)

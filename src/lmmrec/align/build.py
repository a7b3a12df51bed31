"""Build the model a run asks for: a plain backbone, or the wrapper with an aligner."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from lmmrec.config import build, registered
from lmmrec.data.dataset import PreparedDataset
from lmmrec.errors import ConfigError, DataError

# --method name -> "module:Class" of its Aligner; imported on use. "base" is the backbone
# alone. Adding a method is one line here (docs/DEVELOPING.md).
ALIGNERS: dict[str, str] = {
    "lmmrec": "lmmrec.align.aligners:LMMRecAligner",
    "rlmrec-con": "lmmrec.align.aligners:RLMRecConAligner",
    "rlmrec-gen": "lmmrec.align.aligners:RLMRecGenAligner",
}


def methods() -> list[str]:
    return ["base", *ALIGNERS]


def check_method(name: str) -> str:
    """A pydantic-validator-friendly check: ValueError naming the valid methods."""
    if name not in methods():
        raise ValueError(f"unknown method {name!r}; valid: {', '.join(methods())}")
    return name


def aligner_class(method: str) -> type:
    return registered(ALIGNERS, method, "method", methods())


def aligner_config(method: str, params: dict[str, Any]) -> Any:
    return build(aligner_class(method).Config, [params], source=f"align ({method})",
                 prefix="align.")


def summary_vectors(profiles: Any, ds: PreparedDataset, artifact: str | Path
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings of every entity's one-sentence profile summary ('' for no text: zeros), by
    the model that embedded the artifact's phrases (its manifest), so both share one space."""
    from lmmrec.text.artifact import read_manifest
    from lmmrec.text.embed import EmbedConfig, embed_texts

    used = read_manifest(artifact).get("embedding") or {}
    cfg = EmbedConfig(**{k: used[k] for k in ("kind", "model") if k in used})
    out = []
    for entity, n in (("user", ds.n_users), ("item", ds.n_items)):
        texts = [profiles.summary(entity, k) for k in range(n)]
        have = [k for k, t in enumerate(texts) if t]
        vecs = np.zeros((n, profiles.dim), dtype=np.float32)
        if have:
            got = embed_texts([texts[k] for k in have], cfg)
            if got.shape[1] != profiles.dim:
                raise DataError(f"summaries embed to {got.shape[1]}-d with {cfg.kind}:"
                                f"{cfg.model}, but the phrases are {profiles.dim}-d",
                                path=Path(artifact) / "manifest.json", field="embedding")
            vecs[have] = got
        out.append(vecs)
    return out[0], out[1]


def _profiles(ds: PreparedDataset, method: str, motivations: str | Path | None,
              cfg: Any) -> Any:
    """The split's profiles from the artifact (at the aligner's review share), refused when
    they give no text side."""
    from lmmrec.text.profiles import amass

    if motivations is None:
        raise ConfigError(f"--method {method} needs motivations: pass --motivations DIR")
    only = None
    if cfg.review_share < 1:
        from lmmrec.llm.budget import budget_pairs

        only = budget_pairs(ds, cfg.review_share, cfg.review_seed)
    profiles = amass(ds, motivations, only_pairs=only)
    st = profiles.stats
    if only is not None:
        st["review_share"] = cfg.review_share
        st["budget_reviews"] = len(only)
    if st["train_reviews_used"] == 0:
        raise DataError("no training review of this split has extracted motivations",
                        path=motivations)
    if st["train_coverage"] < 1 and only is None:  # a release still being extracted
        warnings.warn(f"{motivations}: motivations cover {st['train_reviews_used']} of "
                      f"{st['train_interactions']} training interactions "
                      f"({100 * st['train_coverage']:.1f} %); the others have no text side",
                      stacklevel=3)
    return profiles


def wrap(backbone: nn.Module, method: str, params: dict[str, Any], ds: PreparedDataset,
         motivations: str | Path | None) -> nn.Module:
    """`backbone` itself for base; otherwise the aligned wrapper fed by `motivations` (or,
    with text_input=reviews, by the prepared reviews' raw text alone)."""
    if method == "base":
        return backbone
    from lmmrec.align.inputs import build_inputs
    from lmmrec.align.wrapper import AlignedModel

    cfg = aligner_config(method, params)
    text_input = getattr(cfg, "text_input", "phrases")
    if text_input == "reviews":  # raw review text only: no LLM, no artifact read
        from lmmrec.align.inputs import raw_review_inputs

        inputs = raw_review_inputs(ds)
        st = inputs.stats
    else:
        profiles = _profiles(ds, method, motivations, cfg)
        st = profiles.stats
        if text_input == "phrases+reviews":
            from lmmrec.align.inputs import combined_inputs, raw_review_inputs

            inputs = combined_inputs(build_inputs(profiles), raw_review_inputs(ds))
        else:
            needs_summary = text_input == "summary"
            su, si = (summary_vectors(profiles, ds, motivations) if needs_summary
                      else (None, None))
            inputs = build_inputs(profiles, su, si)
    deg_u = np.diff(ds.train.indptr)
    deg_i = np.bincount(ds.train.indices, minlength=ds.n_items)
    aligner = aligner_class(method).create(inputs, backbone, cfg, (deg_u, deg_i))
    model = AlignedModel(backbone, aligner)
    model.text_stats = dict(st)  # written to the run's metrics.json
    return model

"""Canonical motivations: near-synonymous phrases share one motivation; as the text side
and as the prototypes' starting point."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmmrec.text.canonical import canonical_profiles, cluster


def _groups(rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """Three tight groups of unit vectors (synonyms) in 16-d."""
    axes = np.eye(16)[[0, 5, 11]]
    names = ["cheap", "good price", "affordable", "loud", "noisy", "strings broke",
             "snapped string"]
    group = [0, 0, 0, 1, 1, 2, 2]
    v = axes[group] + 0.05 * rng.normal(size=(len(group), 16))
    return v / np.linalg.norm(v, axis=1, keepdims=True), names


def test_synonyms_share_a_motivation_named_by_the_most_used_phrase():
    v, _ = _groups(np.random.default_rng(0))
    use = np.array([1, 5, 2, 1, 1, 3, 3], dtype=float)
    voc = cluster(v, use, k=3)
    assert len(set(voc.labels[:3])) == 1 and len(set(voc.labels[3:5])) == 1
    assert len(set(voc.labels[5:])) == 1 and len(set(voc.labels)) == 3
    # ordered by use: the price group (8) first, then strings (6), then noise (2)
    assert voc.labels[0] == 0 and voc.labels[5] == 1 and voc.labels[3] == 2
    assert voc.weight.tolist() == [8, 6, 2]
    assert np.allclose(np.linalg.norm(voc.centroids, axis=1), 1, atol=1e-6)
    # the centroid is the use-weighted mean direction of its phrases
    want = (use[:3, None] * v[:3]).sum(0)
    assert np.allclose(voc.centroids[0], want / np.linalg.norm(want), atol=1e-5)
    assert cluster(v, use, k=50).centroids.shape[0] == 7  # K capped at the phrases


def test_canonical_profiles_replace_each_phrase_by_its_motivation():
    from test_aligner_grads import tiny_profiles  # this folder is on sys.path (no package)

    p = tiny_profiles()
    q, voc = canonical_profiles(p, k=3)
    assert q.embeddings.shape == p.embeddings.shape and q.phrases == p.phrases
    for j in range(len(p.phrases)):
        assert np.allclose(q.embeddings[j], voc.centroids[voc.labels[j]])
    assert len(voc.names) == 3 and set(voc.names) <= set(p.phrases)
    assert q.stats["canonical_k"] == 3 and q.stats["canonical_phrases"] == len(p.phrases)
    assert (q.user_pos != p.user_pos).nnz == 0  # the profiles' weights are unchanged


def test_prototypes_start_from_the_most_used_motivations():
    from test_aligner_grads import make_model

    m = make_model(n_prototypes=3, proto_init="canonical")
    a = m.aligner
    inp = a.inputs
    use = (torch.zeros(len(inp.phrases)).index_add(0, inp.user_rows.col, inp.user_rows.val)
           .index_add(0, inp.item_rows.col, inp.item_rows.val))
    voc = cluster(inp.phrases.numpy(), use.numpy(), 3)
    with torch.no_grad():
        want = a.text(torch.from_numpy(voc.centroids))
    assert torch.allclose(a.proto.prototypes, want, atol=1e-6)
    assert torch.allclose(a.teacher_proto.prototypes, want, atol=1e-6)  # the EMA copy too
    rand = make_model(n_prototypes=3).aligner.proto.prototypes
    assert not torch.allclose(rand, want)


@pytest.mark.slow
def test_lmmrec_trains_on_canonical_motivations(beauty_dir, beauty_motivations, tmp_path):
    from lmmrec.train.config import resolve_config
    from lmmrec.train.trainer import fit

    cfg = resolve_config("lightgcn", [], ["train.max_epochs=2", "train.eval_every=1",
                                          "train.progress=false", "train.threads=1",
                                          "align.text_input=canonical", "align.canonical_k=64",
                                          "align.proto_init=canonical"],
                         base={"data": str(beauty_dir), "method": "lmmrec",
                               "motivations": str(beauty_motivations)})
    out = fit(cfg, tmp_path / "run")
    assert out["test"]["recall@20"] > 0
    assert out["text"]["canonical_k"] == 64

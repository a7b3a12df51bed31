"""The synthetic motivation artifact the scale benchmarks train and serve with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lmmrec.text.artifact import load_reviews, read_manifest
from lmmrec.text.synthetic import write_synthetic_artifact, zipf_weights


def test_zipf_weights_are_a_power_law() -> None:
    w = zipf_weights(4, 1.0)
    assert w.sum() == pytest.approx(1.0)
    assert w[0] / w[1] == pytest.approx(2.0) and w[0] / w[3] == pytest.approx(4.0)


def test_synthetic_artifact_is_a_real_seeded_artifact(beauty_dir: Path, tmp_path: Path
                                                      ) -> None:
    from lmmrec.data.dataset import PreparedDataset
    from lmmrec.text.profiles import amass

    a, b = tmp_path / "a", tmp_path / "b"
    info = write_synthetic_artifact(beauty_dir, a, share=0.5, seed=3, dim=16)
    write_synthetic_artifact(beauty_dir, b, share=0.5, seed=3, dim=16)
    ds = PreparedDataset.load(beauty_dir)
    reviews = load_reviews(a)
    assert len(reviews) == info["reviews"] == len(ds.interactions) // 2
    assert reviews.equals(load_reviews(b))  # same seed, same artifact
    assert np.array_equal(np.load(a / "embeddings.npy"), np.load(b / "embeddings.npy"))
    assert reviews["pos"].map(len).between(1, 2).all()
    assert reviews["neg"].map(len).between(0, 1).all()
    assert read_manifest(a)["embedding"]["dim"] == 16
    # the training path reads it: profiles for the training split's users
    profiles = amass(ds, a)
    assert profiles.user_pos.nnz > 0 and profiles.item.nnz > 0
    assert profiles.embeddings.shape[1] == 16


def test_synthetic_artifact_refuses_an_empty_share(beauty_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="share"):
        write_synthetic_artifact(beauty_dir, tmp_path / "x", share=0.0)
    assert not (tmp_path / "x").exists()

"""Canonical motivations: the phrase vocabulary clustered into K motivations, so that
"cheap", "good price" and "affordable" count as one.

Spherical k-means (k-means on L2-normalised vectors, centroids renormalised: cosine is what
the encoder's space means), each distinct phrase weighted by how often profiles use it, so
frequent phrases anchor the clusters and a typo's phrase does not get a cluster of its own.
A cluster is named by its most used phrase. Used two ways (lmmrec aligner):

- ``align.text_input=canonical``: every phrase is replaced by its cluster's centroid, so an
  entity's text side is a weighted bag of K canonical motivations;
- ``align.proto_init=canonical``: the prototypes start from the K most used clusters'
  centroids (through the text encoder), not from random vectors.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from lmmrec.text.profiles import Profiles


@dataclass
class Vocabulary:
    labels: np.ndarray  # [P] cluster of each phrase
    centroids: np.ndarray  # [K, D] L2-normalised, ordered by use (most used first)
    weight: np.ndarray  # [K] total use of each cluster's phrases
    names: list[str]  # [K] each cluster's most used phrase


def cluster(vectors: np.ndarray, weights: np.ndarray, k: int, seed: int = 0) -> Vocabulary:
    """K canonical motivations of ``vectors`` ([P, D], one per distinct phrase) used
    ``weights`` times each (K is capped at the number of distinct vectors)."""
    from sklearn.cluster import KMeans

    x = np.asarray(vectors, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    w = np.asarray(weights, dtype=np.float64)
    w = np.where(w > 0, w, 1e-6)  # an unused phrase still gets a cluster, at no pull
    k = max(1, min(int(k), len(x)))
    km = KMeans(n_clusters=k, n_init=1, random_state=seed, max_iter=100)
    labels = km.fit_predict(x, sample_weight=w)
    cent = np.zeros((k, x.shape[1]))
    np.add.at(cent, labels, w[:, None] * x)
    cent /= np.maximum(np.linalg.norm(cent, axis=1, keepdims=True), 1e-12)
    use = np.bincount(labels, weights=w, minlength=k)
    order = np.argsort(-use, kind="stable")
    rank = np.empty(k, dtype=np.int64)
    rank[order] = np.arange(k)
    return Vocabulary(rank[labels], cent[order].astype(np.float32), use[order], [])


def phrase_use(p: Profiles) -> np.ndarray:
    """How much the split's profiles use each phrase (user and item sides)."""
    return (np.asarray(p.user_pos.sum(axis=0)).ravel() + np.asarray(p.item.sum(axis=0)).ravel()
            + np.asarray(p.user_neg.sum(axis=0)).ravel())


def canonical_profiles(p: Profiles, k: int, seed: int = 0) -> tuple[Profiles, Vocabulary]:
    """``p`` with every phrase vector replaced by its canonical motivation's centroid."""
    use = phrase_use(p)
    voc = cluster(p.embeddings, use, k, seed)
    names = []
    for c in range(len(voc.centroids)):
        members = np.flatnonzero(voc.labels == c)
        names.append(p.phrases[int(members[np.argmax(use[members])])])
    voc.names = names
    stats = {**p.stats, "canonical_k": len(voc.centroids), "canonical_phrases": len(p.phrases)}
    return replace(p, embeddings=voc.centroids[voc.labels], stats=stats), voc

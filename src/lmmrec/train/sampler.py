"""BPR triples (user, positive, negative), sampled for a whole epoch at once.

One pass over every training interaction per epoch in a random order (as RLMRec's
DataLoader), negatives drawn uniformly and redrawn while they hit a training positive.
Every rank draws the same permutation (and negatives) from the same seed and keeps every
N-th triple, so sampling shards across DDP ranks without communication: shards are
disjoint, together cover the epoch (padded to a multiple of N), and the ranks' i-th local
batches of size B/N together are exactly the single process's i-th batch of size B.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


class BPRSampler:
    def __init__(self, train: sp.csr_matrix, rng: np.random.Generator,
                 rank: int = 0, world_size: int = 1) -> None:
        train = sp.csr_matrix(train)
        train.sum_duplicates()
        train.sort_indices()
        self.n_items = train.shape[1]
        self.users = np.repeat(np.arange(train.shape[0], dtype=np.int64), np.diff(train.indptr))
        self.items = train.indices.astype(np.int64)
        self.keys = self.users * self.n_items + self.items  # sorted, for membership tests
        self.rng, self.rank, self.world_size = rng, rank, world_size
        full = np.flatnonzero(np.diff(train.indptr) >= self.n_items)
        if len(full):  # no negative exists: the redraw loop would never end
            raise ValueError(f"user {full[0]} interacted with every item; BPR needs a negative")

    def __len__(self) -> int:
        return len(self.users)

    def is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        q = users * self.n_items + items
        pos = np.searchsorted(self.keys, q).clip(max=len(self.keys) - 1)
        return self.keys[pos] == q

    def negatives(self, users: np.ndarray) -> np.ndarray:
        neg = self.rng.integers(0, self.n_items, size=len(users))
        bad = np.flatnonzero(self.is_positive(users, neg))
        while len(bad):  # redraw only the collisions, all at once
            neg[bad] = self.rng.integers(0, self.n_items, size=len(bad))
            bad = bad[self.is_positive(users[bad], neg[bad])]
        return neg

    def epoch(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """This rank's (users, positives, negatives) for one epoch, shuffled."""
        order = self.rng.permutation(len(self.users))
        users, pos = self.users[order], self.items[order]
        neg = self.negatives(users)
        if self.world_size == 1:
            return users, pos, neg
        # Equal shards (equal batch counts on every rank): pad the epoch to a multiple of
        # world_size with its first triples, as torch's DistributedSampler does. Padding
        # after the draws keeps the RNG stream the same as a single process's.
        idx = np.arange(len(users) + (-len(users)) % self.world_size) % len(users)
        idx = idx[self.rank::self.world_size]  # rank r takes positions r, r+N, ...
        return users[idx], pos[idx], neg[idx]

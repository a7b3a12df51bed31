"""The user-item graph as a torch sparse CSR tensor, with a fast product and edge dropout.

Nodes are users 0..U-1 followed by items U..U+I-1. torch's generic sparse backward is
~100x slower than the forward on CPU, so `spmm` has its own autograd rule: the gradient of
A @ X is A^T @ G, and A^T is the same CSR structure with values permuted (the graph's
pattern is symmetric), so dropout masks stay exact and no transpose is ever built.
`sddmm` (a[r] . b[c] per stored entry: attention logits, value gradients) works the same way.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch


def bipartite_adjacency(train: sp.spmatrix, self_loop: bool = False) -> sp.csr_matrix:
    """Binary (U+I)x(U+I) adjacency [[0, R], [R^T, 0]] (+ I with `self_loop`), sparse only."""
    r = sp.csr_matrix(train, dtype=np.float32)
    r.sum_duplicates()
    r.data[:] = 1.0
    n = r.shape[0] + r.shape[1]
    adj = sp.bmat([[None, r], [r.T, None]], format="csr", dtype=np.float32)
    adj.resize((n, n))
    if self_loop:
        adj = (adj + sp.identity(n, dtype=np.float32, format="csr")).tocsr()
    adj.sort_indices()
    return adj


def normalize_sym(adj: sp.csr_matrix) -> sp.csr_matrix:
    """D^-1/2 A D^-1/2; isolated nodes get 0 instead of inf."""
    deg = np.asarray(adj.sum(axis=1)).ravel()
    with np.errstate(divide="ignore"):
        d = np.where(deg > 0, deg ** -0.5, 0.0).astype(np.float32)
    out = sp.csr_matrix(sp.diags(d) @ adj @ sp.diags(d), dtype=np.float32)
    out.sort_indices()
    return out


def _csr(crow: torch.Tensor, col: torch.Tensor, vals: torch.Tensor, n: int) -> torch.Tensor:
    with warnings.catch_warnings():  # "CSR support is in beta"; it works for what we use
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, col, vals, size=(n, n), check_invariants=False)


@dataclass
class Graph:
    """A square sparse matrix with a symmetric pattern: CSR parts plus `perm`, where
    vals[perm] lists the values of the transpose in the same CSR order."""

    crow: torch.Tensor
    col: torch.Tensor
    vals: torch.Tensor
    perm: torch.Tensor

    @classmethod
    def from_scipy(cls, m: sp.csr_matrix) -> Graph:
        m = sp.csr_matrix(m, dtype=np.float32)
        m.sort_indices()
        pos = sp.csr_matrix((np.arange(m.nnz, dtype=np.float64) + 1, m.indices, m.indptr),
                            shape=m.shape)
        pos_t = sp.csr_matrix(pos.T)
        pos_t.sort_indices()
        if not (np.array_equal(pos_t.indptr, m.indptr)
                and np.array_equal(pos_t.indices, m.indices)):
            raise ValueError("graph pattern must be symmetric")
        perm = pos_t.data.astype(np.int64) - 1
        return cls(torch.from_numpy(m.indptr.astype(np.int64)),
                   torch.from_numpy(m.indices.astype(np.int64)),
                   torch.from_numpy(m.data.copy()), torch.from_numpy(perm))

    @property
    def n(self) -> int:
        return self.crow.numel() - 1

    @property
    def nnz(self) -> int:
        return self.vals.numel()

    @classmethod
    def from_edges(cls, rows: torch.Tensor, cols: torch.Tensor, n: int) -> Graph:
        """The pattern of edges sorted by (row, column), without duplicates, and symmetric
        (every (c, r) present with its (r, c)); all values 1."""
        crow = torch.zeros(n + 1, dtype=torch.long, device=rows.device)
        crow[1:] = torch.bincount(rows, minlength=n).cumsum(0)
        perm = torch.searchsorted(rows * n + cols, cols * n + rows)
        return cls(crow, cols, torch.ones(rows.shape, device=rows.device), perm)

    def with_values(self, vals: torch.Tensor) -> Graph:
        return Graph(self.crow, self.col, vals, self.perm)

    def to(self, device: torch.device | str) -> Graph:
        return Graph(*(t.to(device) for t in (self.crow, self.col, self.vals, self.perm)))

    def csr(self) -> torch.Tensor:
        return _csr(self.crow, self.col, self.vals, self.n)

    def csr_t(self) -> torch.Tensor:
        return _csr(self.crow, self.col, self.vals[self.perm], self.n)

    def edge_dropout(self, keep: float, generator: torch.Generator | None = None) -> Graph:
        """Zero each stored entry with probability 1-keep, without rescaling (RLMRec's
        SpAdjEdgeDrop); the CSR structure stays, so nothing is re-indexed."""
        if keep >= 1.0:
            return self
        mask = torch.rand(self.vals.shape, generator=generator, device=self.vals.device) < keep
        return self.with_values(self.vals * mask)


class _SpMM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, crow, col, vals, perm, x):  # noqa: D102
        ctx.save_for_backward(crow, col, vals, perm, x)
        return torch.sparse.mm(_csr(crow, col, vals, crow.numel() - 1), x)

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        crow, col, vals, perm, x = ctx.saved_tensors
        grad = grad.contiguous()
        gx = gv = None
        if ctx.needs_input_grad[4]:
            gx = torch.sparse.mm(_csr(crow, col, vals[perm], crow.numel() - 1), grad)
        if ctx.needs_input_grad[2]:  # d(out[r])/d(v_rc) = x[c]: grad[r] . x[c], per entry
            gv = _sampled_dot(crow, col, vals, grad, x)
        return None, None, gv, None, gx


class _SDDMM(torch.autograd.Function):
    """a[r] . b[c] for every stored entry (r, c); the gradients are sparse products with the
    entry gradients as values (transposed through `perm` for b)."""

    @staticmethod
    def forward(ctx, crow, col, vals, perm, a, b):  # noqa: D102
        ctx.save_for_backward(crow, col, perm, a, b)
        return _sampled_dot(crow, col, vals, a, b)

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        crow, col, perm, a, b = ctx.saved_tensors
        n = crow.numel() - 1
        grad = grad.contiguous()
        ga = torch.sparse.mm(_csr(crow, col, grad, n), b) if ctx.needs_input_grad[4] else None
        gb = (torch.sparse.mm(_csr(crow, col, grad[perm], n), a)
              if ctx.needs_input_grad[5] else None)
        return None, None, None, None, ga, gb


def _sampled_dot(crow: torch.Tensor, col: torch.Tensor, vals: torch.Tensor, a: torch.Tensor,
                 b: torch.Tensor) -> torch.Tensor:
    """a[r] . b[c] at every stored (r, c), in CSR order; one sparse kernel, ~10x faster on
    CPU than gathering a[rows] and b[cols] (`vals` only fills the pattern: beta is 0)."""
    pattern = _csr(crow, col, vals.detach().to(a.dtype), crow.numel() - 1)
    return torch.sparse.sampled_addmm(pattern, a.contiguous(), b.T, beta=0.0).values()


def row_ids(crow: torch.Tensor) -> torch.Tensor:
    """Row index of every stored entry, in CSR order."""
    n = crow.numel() - 1
    return torch.repeat_interleave(torch.arange(n, device=crow.device), crow.diff())


def spmm(graph: Graph, x: torch.Tensor) -> torch.Tensor:
    """graph @ x, differentiable in x and in the graph's values."""
    return _SpMM.apply(graph.crow, graph.col, graph.vals, graph.perm, x)


def sddmm(graph: Graph, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a[r] . b[c] for each stored entry (r, c) of ``graph``, in CSR order; differentiable in
    a and b (the graph's values are not used)."""
    return _SDDMM.apply(graph.crow, graph.col, graph.vals, graph.perm, a, b)


def norm_adj(train: sp.spmatrix, self_loop: bool = False) -> Graph:
    """Symmetric normalised bipartite adjacency D^-1/2 A D^-1/2 (RLMRec's, incl. GCCF's
    self-loop variant), built without dense intermediates."""
    return Graph.from_scipy(normalize_sym(bipartite_adjacency(train, self_loop)))


def edge_index(graph: Graph) -> tuple[torch.Tensor, torch.Tensor]:
    """Head (row) and tail (column) node of every stored entry, in CSR order."""
    return row_ids(graph.crow), graph.col

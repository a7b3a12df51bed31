"""The normalised adjacency, edge dropout and the custom sparse products."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from lmmrec.backbones.graph import Graph, edge_index, norm_adj, sddmm, spmm


def dense_reference(r: np.ndarray, self_loop: bool = False) -> np.ndarray:
    n_u, n_i = r.shape
    a = np.zeros((n_u + n_i,) * 2)
    a[:n_u, n_u:], a[n_u:, :n_u] = r, r.T
    if self_loop:
        a += np.eye(n_u + n_i)
    d = a.sum(1)
    inv = np.where(d > 0, np.maximum(d, 1e-12) ** -0.5, 0)
    return inv[:, None] * a * inv[None, :]


def test_norm_adj_matches_dense():
    rng = np.random.default_rng(0)
    r = (rng.random((6, 5)) < 0.4).astype(float)
    r[0] = 0  # an isolated user
    for loop in (False, True):
        g = norm_adj(sp.csr_matrix(r), self_loop=loop)
        np.testing.assert_allclose(g.csr().to_dense().numpy(), dense_reference(r, loop),
                                   rtol=1e-6)
        np.testing.assert_allclose(g.csr_t().to_dense().numpy(), dense_reference(r, loop).T,
                                   rtol=1e-6)


def test_edge_dropout_keeps_structure_and_drops_about_right():
    r = sp.random(200, 150, density=0.1, random_state=0, format="csr")
    g = norm_adj(r)
    torch.manual_seed(0)
    d = g.edge_dropout(0.8)
    assert torch.equal(d.col, g.col)
    kept = (d.vals != 0).float().mean().item()
    assert 0.75 < kept < 0.85
    assert torch.equal(d.vals[d.vals != 0], g.vals[d.vals != 0])  # no rescaling


def test_spmm_gradients():
    r = sp.random(5, 4, density=0.5, random_state=1, format="csr")
    torch.manual_seed(0)
    g = norm_adj(r).edge_dropout(0.7)  # not symmetric any more: exercises the transpose
    g = g.with_values(g.vals.double().requires_grad_())
    x = torch.randn(9, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v, z: spmm(g.with_values(v), z), (g.vals, x))


def test_sddmm_is_the_per_entry_dot_and_differentiable():
    r = sp.random(5, 4, density=0.5, random_state=2, format="csr")
    g = norm_adj(r)
    rows, cols = edge_index(g)
    torch.manual_seed(0)
    a = torch.randn(9, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(9, 3, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(sddmm(g, a, b), (a[rows] * b[cols]).sum(-1))
    assert torch.autograd.gradcheck(lambda x, y: sddmm(g, x, y), (a, b))


def test_graph_from_edges_transposes_through_perm():
    rows = torch.tensor([0, 0, 1, 1, 2, 3])
    cols = torch.tensor([0, 2, 1, 3, 0, 1])  # symmetric, sorted by (row, column)
    g = Graph.from_edges(rows, cols, 4)
    vals = torch.arange(1.0, 7.0)  # distinct values: a wrong perm shows
    dense = g.with_values(vals).csr().to_dense()
    assert torch.equal(g.with_values(vals).csr_t().to_dense(), dense.T)
    assert torch.equal(torch.stack(edge_index(g)), torch.stack([rows, cols]))

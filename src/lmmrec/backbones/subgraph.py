"""AutoCF's augmentation (Xia et al., "Automated Self-Supervised Learning for Recommendation",
WWW 2023), as SSLRec / RLMRec run it (`LocalGraph`, `RandomMaskSubgraphs` in autocf.py):

1. score every node by local-global infomax: the sigmoid of the cosine between its own
   embedding and the mean embedding of its 1- and 2-hop neighbourhood; seeds are the top-k
   of the log-scores plus Gumbel noise (sampling seeds in proportion to their scores);
2. mask the seeds' k-hop subgraphs: remove every edge within `depth` hops of a seed; the
   encoder propagates over the rest, renormalised;
3. the decoder's graph: the kept edges, a self-loop on every node, and as many random node
   pairs (both directions) as the full graph has entries, drawn among the masked nodes plus
   a random `sample_rate` share of all nodes.

Edges are (row, column) lists of a symmetric pattern in CSR order (`graph.edge_index`); all
randomness comes from torch's global RNG.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lmmrec.backbones.graph import Graph, spmm


def local_global_scores(adj: Graph, x: torch.Tensor) -> torch.Tensor:
    """σ(cos(x_v, s_v)) per node, s_v the mean of x over v's 1- and 2-hop walks.

    ``adj`` is the binary adjacency without self-loops. The source's formulas, kept as
    written: 1-hop sum A·x − x, 2-hop sum A·(1-hop) − (1-hop) − deg·x (walks back to the
    node removed), each count computed the same way from the degrees.
    """
    deg = spmm(adj, torch.ones_like(x[:, :1]))
    first = spmm(adj, x) - x
    second = spmm(adj, first) - first - deg * x
    second_n = spmm(adj, deg) - deg - deg
    sub = (first + second) / (deg + second_n + 1e-8)
    return torch.sigmoid((F.normalize(sub) * F.normalize(x)).sum(-1))


def gumbel_top_k(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(log scores + Gumbel noise, indices of its k largest): k draws without replacement,
    each node in proportion to its score. The noisy log-scores are also the infomax term."""
    u = torch.rand_like(scores).clamp_(1e-12, 1 - 1e-7)  # log(log(0)) would be inf
    noisy = scores.log() - torch.log(-torch.log(u))
    return noisy, torch.topk(noisy, min(k, noisy.numel())).indices


def mask_subgraphs(rows: torch.Tensor, cols: torch.Tensor, seeds: torch.Tensor, depth: int
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """(kept-edge mask, masked nodes). Level by level, edges touching the frontier are
    removed; their endpoints (the frontier included) form the next frontier, except after
    the last level. Masked nodes: the seeds and every frontier after them."""
    keep = torch.ones_like(rows, dtype=torch.bool)
    nodes, frontier = [seeds], seeds
    for level in range(depth):
        hit = keep & (torch.isin(rows, frontier) | torch.isin(cols, frontier))
        keep &= ~hit
        if level < depth - 1:
            frontier = torch.unique(torch.cat([rows[hit], cols[hit]]))
            nodes.append(frontier)
    return keep, torch.unique(torch.cat(nodes))


def add_random_nodes(masked: torch.Tensor, n_nodes: int, rate: float) -> torch.Tensor:
    """The masked nodes plus int(n_nodes * rate) uniform draws (with replacement)."""
    drawn = torch.randint(n_nodes, (int(n_nodes * rate),), device=masked.device)
    return torch.unique(torch.cat([masked, drawn]))


def encoder_graph(graph: Graph, rows: torch.Tensor, keep: torch.Tensor) -> Graph:
    """D^-1/2 A D^-1/2 of the kept edges, D their degrees; removed entries are stored
    zeros, so the CSR structure (and `perm`) is unchanged."""
    kept = keep.to(graph.vals.dtype)
    deg = torch.zeros(graph.n, dtype=kept.dtype, device=kept.device).index_add(0, rows, kept)
    d = (deg + 1e-12).pow(-0.5)
    return graph.with_values(kept * d[rows] * d[graph.col])


def decoder_graph(rows: torch.Tensor, cols: torch.Tensor, keep: torch.Tensor,
                  pool: torch.Tensor, n_nodes: int) -> Graph:
    """The pattern of: kept edges + self-loops + len(rows) random pairs from ``pool`` in
    both directions, deduplicated (symmetric, as the kept edges are)."""
    a = pool[torch.randint(pool.numel(), (rows.numel(),), device=pool.device)]
    b = pool[torch.randint(pool.numel(), (rows.numel(),), device=pool.device)]
    loops = torch.arange(n_nodes, device=rows.device)
    r = torch.cat([a, b, loops, rows[keep]])
    c = torch.cat([b, a, loops, cols[keep]])
    key = torch.unique(r * n_nodes + c)  # sorted by (row, column)
    return Graph.from_edges(key // n_nodes, key % n_nodes, n_nodes)

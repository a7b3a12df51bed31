"""Every recommendation, contrastive and alignment loss, in one place: backbones (SGL,
SimGCL, DCCF, AutoCF) and aligners import from here, so no two helpers share a name with
different meanings.

Two InfoNCE variants exist on purpose:
- `info_nce_sum`: summed over rows, each row against explicit candidates (RLMRec's
  cal_infonce_loss; the backbones' views and RLMRec-Con use it as published).
- `info_nce_mean`: mean cross-entropy over rows, row i of ``a`` against every row of ``b``,
  optionally symmetric (LMMRec's MCS and coordination, RLMRec-Gen).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


def bpr(user_emb: torch.Tensor, pos_emb: torch.Tensor, neg_emb: torch.Tensor) -> torch.Tensor:
    """BPR: mean −log σ(u·i⁺ − u·i⁻), as softplus of the margin (stable for large scores)."""
    margin = (user_emb * neg_emb).sum(-1) - (user_emb * pos_emb).sum(-1)
    return F.softplus(margin).mean()


def log_sum_exp_mean(anchors: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """mean_rows log Σ_j exp(a_i · c_j): raw dot products, no temperature (AutoCF's
    `contrast`, which pushes each anchor away from every candidate; logsumexp where the
    source wrote log(exp(·).sum()), the same value without overflow)."""
    return _LogSumExpDot.apply(anchors, candidates).mean()


class _LogSumExpDot(torch.autograd.Function):
    """Row-wise logsumexp of a @ c.T without keeping the anchors x candidates matrix: a few
    rows at a time (the block stays in cache), and the backward pass recomputes each block's
    softmax. Autograd's version keeps the full matrix and makes ~5 passes over it; on CPU
    those passes, not the products, were most of an AutoCF step."""

    @staticmethod
    def forward(ctx, a, c):  # noqa: ANN001, ANN205, D102
        lse = a.new_empty(a.shape[0])
        for s, e in _blocks(a.shape[0], c.shape[0]):
            lse[s:e] = torch.logsumexp(a[s:e] @ c.T, dim=1)
        ctx.save_for_backward(a, c, lse)
        return lse

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001, ANN205, D102
        a, c, lse = ctx.saved_tensors
        ga, gc = torch.empty_like(a), torch.zeros_like(c)
        for s, e in _blocks(a.shape[0], c.shape[0]):
            # d lse_i / d logit_ij = softmax_ij; scaled by the incoming gradient of row i
            p = torch.addmm(-lse[s:e, None], a[s:e], c.T).exp_().mul_(grad[s:e, None])
            ga[s:e] = p @ c
            gc.addmm_(p.T, a[s:e])
        return ga, gc


def _blocks(rows: int, cols: int, floats: int = 1 << 18) -> list[tuple[int, int]]:
    """Row ranges whose rows x cols block holds about `floats` numbers (1 MB in float32: in
    cache; measured best of 2^16..2^21 on the Amazon split)."""
    step = max(1, floats // max(cols, 1))
    return [(s, min(s + step, rows)) for s in range(0, rows, step)]


def cosine_logits(a: torch.Tensor, b: torch.Tensor, temp: float) -> torch.Tensor:
    """cos(a_i, b_j) / t for every pair of rows (1/t applied to the n×d side, not n×n)."""
    return (F.normalize(a, dim=-1, eps=1e-8) / temp) @ F.normalize(b, dim=-1, eps=1e-8).T


def info_nce_sum(a: torch.Tensor, b: torch.Tensor, candidates: torch.Tensor, temp: float
                 ) -> torch.Tensor:
    """Σ_rows −log softmax(cos(a, candidates)/t) at the positive cos(a, b)/t (RLMRec's
    cal_infonce_loss, logsumexp for stability)."""
    a = F.normalize(a, dim=-1, eps=1e-8)
    b = F.normalize(b, dim=-1, eps=1e-8)
    candidates = F.normalize(candidates, dim=-1, eps=1e-8)
    pos = (a * b).sum(-1) / temp
    return (torch.logsumexp(a @ candidates.T / temp, dim=-1) - pos).sum()


def info_nce_mean(a: torch.Tensor, b: torch.Tensor, temp: float, symmetric: bool = True
                  ) -> torch.Tensor:
    """Mean InfoNCE over rows: row i of ``a`` should match row i of ``b`` among all rows.

    loss_a→b = mean_i [ -log softmax_j(cos(a_i, b_j) / t) at j = i ]; ``symmetric`` averages
    it with b→a.
    """
    return info_nce_mean_from_logits(cosine_logits(a, b, temp), symmetric)


def info_nce_mean_from_logits(logits: torch.Tensor, symmetric: bool = True) -> torch.Tensor:
    target = torch.arange(len(logits), device=logits.device)
    loss = F.cross_entropy(logits, target)
    if symmetric:
        loss = 0.5 * (loss + F.cross_entropy(logits.T, target))
    return loss


def soft_targets(teacher_text: torch.Tensor, teacher_inter: torch.Tensor, temp: float,
                 alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher's text→interaction and interaction→text correspondence distributions, mixed
    with the one-hot targets: alpha * one_hot + (1 - alpha) * softmax(teacher)."""
    sim = cosine_logits(teacher_text, teacher_inter, temp)
    eye = torch.eye(len(sim), device=sim.device, dtype=sim.dtype)
    t2i = alpha * eye + (1 - alpha) * sim.softmax(dim=1)
    i2t = alpha * eye + (1 - alpha) * sim.T.softmax(dim=1)
    return t2i.detach(), i2t.detach()


def correspondence_kl(text: torch.Tensor, inter: torch.Tensor, t2i: torch.Tensor,
                      i2t: torch.Tensor, temp: float) -> torch.Tensor:
    """ITCM: KL(target || student) in both directions, averaged over rows.

    KL(P || Q) = sum_j P_ij (log P_ij - log Q_ij), with Q the student's softmax.
    """
    return correspondence_kl_from_logits(cosine_logits(text, inter, temp), t2i, i2t)


def correspondence_kl_from_logits(logits: torch.Tensor, t2i: torch.Tensor, i2t: torch.Tensor
                                  ) -> torch.Tensor:
    kl_t2i = F.kl_div(logits.log_softmax(dim=1), t2i, reduction="batchmean")
    kl_i2t = F.kl_div(logits.T.log_softmax(dim=1), i2t, reduction="batchmean")
    return 0.5 * (kl_t2i + kl_i2t)


def nce_and_kl_from_logits(logits: torch.Tensor, t2i: torch.Tensor, i2t: torch.Tensor
                           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric `info_nce_mean` and the two-way correspondence KL of one logits matrix,
    sharing its two log-softmaxes: MCS and ITCM at one temperature cost one pass, not two."""
    ls_t2i, ls_i2t = logits.log_softmax(dim=1), logits.T.log_softmax(dim=1)
    nce = -0.5 * (ls_t2i.diagonal().mean() + ls_i2t.diagonal().mean())
    kl = 0.5 * (F.kl_div(ls_t2i, t2i, reduction="batchmean")
                + F.kl_div(ls_i2t, i2t, reduction="batchmean"))
    return nce, kl


class SoftTargets(NamedTuple):
    """What the fused ITCM loss needs of the teacher's two target matrices (t2i and i2t of
    `soft_targets`): q = t2i + i2tᵀ, and Σ t2i·log t2i + Σ i2t·log i2t (the constant that
    makes cross-entropy a KL)."""

    q: torch.Tensor
    neg_entropy: torch.Tensor


# Cosine logits lie in [-1/t, 1/t], so exp(logits - 1/t) cannot overflow, and below this
# bound on 2/t it cannot underflow to a zero row or column sum in float32 either: one exp
# pass then serves both the row and the column softmax. Larger bounds take the general path.
_SHARED_EXP_MAX_SPAN = 60.0


def _shared_exp_ok(bound: float | None) -> bool:
    return bound is not None and 2 * bound <= _SHARED_EXP_MAX_SPAN


def _softmax_sums(sim: torch.Tensor, bound: float | None):  # noqa: ANN202
    """Row softmax + column softmax of ``sim`` (one matrix), Σ row-softmax·sim,
    Σ column-softmax·sim, and the row and column logsumexps."""
    if _shared_exp_ok(bound):  # one exp: softmax rows = e / r, columns = e / c
        e = torch.exp(sim - bound)
        inv_r, inv_c = e.sum(1).reciprocal_(), e.sum(0).reciprocal_()
        lse_r, lse_c = bound - inv_r.log(), bound - inv_c.log()
        es = e * sim
        row, col = torch.dot(inv_r, es.sum(1)), torch.dot(inv_c, es.sum(0))
        return (inv_r[:, None] + inv_c[None, :]).mul_(e), row, col, lse_r, lse_c
    lse_r, lse_c = torch.logsumexp(sim, 1), torch.logsumexp(sim, 0)
    soft_r, soft_c = torch.exp(sim - lse_r[:, None]), torch.exp(sim - lse_c[None, :])
    row, col = torch.dot(soft_r.flatten(), sim.flatten()), torch.dot(soft_c.flatten(),
                                                                     sim.flatten())
    return soft_r.add_(soft_c), row, col, lse_r, lse_c


@torch.no_grad()
def soft_target_sums(teacher_text: torch.Tensor, teacher_inter: torch.Tensor, temp: float,
                     alpha: float) -> SoftTargets:
    """`soft_targets` in the form `nce_and_kl` reads, without materialising log(target):
    off the diagonal a target is (1 − alpha)·softmax, so its log is log(1 − alpha) plus a
    log-softmax, and Σ p log p needs only Σ softmax·logits per direction."""
    sim = cosine_logits(teacher_text, teacher_inter, temp)
    n = len(sim)
    both, row, col, lse_r, lse_c = _softmax_sums(sim, 1 / temp)
    q = both.mul_(1 - alpha)
    q.diagonal().add_(2 * alpha)
    neg_entropy = sim.new_zeros(())
    if alpha >= 1:  # the targets are one-hot: p log p = 0
        return SoftTargets(q, neg_entropy)
    log_keep = math.log1p(-alpha)
    for lse, soft_sim in ((lse_r, row), (lse_c, col)):
        log_soft_diag = sim.diagonal() - lse
        soft_diag = log_soft_diag.exp()
        # Σ_all (1−a)·s·(log(1−a) + log s), then the diagonal swapped for its true p log p
        every = (1 - alpha) * (n * log_keep + soft_sim - lse.sum())
        mixed_diag = (1 - alpha) * soft_diag * (log_keep + log_soft_diag)
        p_diag = alpha + (1 - alpha) * soft_diag
        neg_entropy += every - mixed_diag.sum() + torch.xlogy(p_diag, p_diag).sum()
    return SoftTargets(q, neg_entropy)


class _NceKl(torch.autograd.Function):
    """Symmetric mean InfoNCE and two-way KL(target || student) of one logits matrix, with
    the gradient in closed form. Both are sums of row and column log-softmaxes, so the
    forward needs only the two logsumexp vectors and the backward the two softmaxes: a few
    passes over the n×n matrix, where autograd through log_softmax and kl_div makes ~20.
    With the logits' bound known (cosine logits: 1/t), one exp serves rows and columns."""

    @staticmethod
    def forward(ctx, logits, q, neg_entropy, bound):  # noqa: ANN001, ANN205
        n, q = logits.shape[0], q.to(logits.dtype)
        if _shared_exp_ok(bound):
            e = torch.sub(logits, bound).exp_()
            inv_r, inv_c = e.sum(1).reciprocal_(), e.sum(0).reciprocal_()
            lse_sum = -(inv_r.log().sum() + inv_c.log().sum()) + 2 * n * bound
            ctx.save_for_backward(e, q, inv_r, inv_c)
        else:
            lse_r, lse_c = torch.logsumexp(logits, 1), torch.logsumexp(logits, 0)
            lse_sum = lse_r.sum() + lse_c.sum()
            ctx.save_for_backward(logits, q, lse_r, lse_c)
        ctx.shared = _shared_exp_ok(bound)
        nce = (lse_sum - 2 * logits.diagonal().sum()) * (0.5 / n)
        kl = (neg_entropy - torch.dot(q.flatten(), logits.flatten()) + lse_sum) * (0.5 / n)
        return nce, kl

    @staticmethod
    def backward(ctx, g_nce, g_kl):  # noqa: ANN001, ANN205
        x, q, r, c = ctx.saved_tensors
        n = x.shape[0]
        if ctx.shared:  # x = exp(logits − bound); r, c = 1 / its row and column sums
            both = (r[:, None] + c[None, :]).mul_(x)
        else:  # x = logits; r, c = its row and column logsumexps
            both = torch.exp(x - r[:, None]).add_(torch.exp(x - c[None, :]))
        grad = both.mul_(g_nce + g_kl).sub_(q, alpha=g_kl).mul_(0.5 / n)
        grad.diagonal().sub_(g_nce / n)
        return grad, None, None, None


def nce_and_kl(logits: torch.Tensor, targets: SoftTargets, bound: float | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """`nce_and_kl_from_logits` with the teacher's targets as `soft_target_sums`: the same
    values and gradients, in far fewer ops (the aligned step is op-bound on CPU). ``bound``:
    max |logit| when known (1/t for `cosine_logits`), which saves passes."""
    return _NceKl.apply(logits, targets.q, targets.neg_entropy, bound)


def info_nce_fused(a: torch.Tensor, b: torch.Tensor, temp: float) -> torch.Tensor:
    """Symmetric `info_nce_mean` through `nce_and_kl`'s closed-form pass, with one-hot
    targets (q = 2I, no entropy term): the same value and gradient in fewer ops."""
    logits = cosine_logits(a, b, temp)
    q = torch.eye(len(logits), device=logits.device, dtype=logits.dtype).mul_(2)
    return nce_and_kl(logits, SoftTargets(q, logits.new_zeros(())), 1 / temp)[0]


def soft_cross_entropy(logits: torch.Tensor, target_logits: torch.Tensor) -> torch.Tensor:
    """mean_rows −Σ_j softmax(target)_j · log softmax(logits)_j (IRLLRec's EMA-teacher term:
    the softmax runs over the embedding's dimensions)."""
    target = target_logits.softmax(dim=-1).detach()
    return -(logits.log_softmax(dim=-1) * target).sum(-1).mean()


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, momentum: float) -> None:
    """teacher ← momentum · teacher + (1 − momentum) · student, parameter by parameter
    (one fused lerp over all parameters: the step is op-bound on small models)."""
    t = list(teacher.parameters())
    s = [p.detach() for p in student.parameters()]
    if len(t) != len(s):
        raise ValueError(f"teacher has {len(t)} parameters, student {len(s)}")
    if t:
        torch._foreach_lerp_(t, s, 1 - momentum)

"""Alignment losses on small tensors: hand-checked values, gradient paths, EMA."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lmmrec.align.encoders import PrototypeEncoder, TextEncoder
from lmmrec.losses import (
    correspondence_kl,
    cosine_logits,
    ema_update,
    info_nce_fused,
    info_nce_mean,
    info_nce_sum,
    nce_and_kl,
    nce_and_kl_from_logits,
    soft_target_sums,
    soft_targets,
)
from lmmrec.text.inputs import SparseRows


def test_info_nce_mean_hand_checked() -> None:
    # Orthonormal rows: cos(a_i, b_j) = 1 if i == j else 0.
    a = torch.eye(2)
    b = torch.eye(2)
    t = 0.5
    expected = -math.log(math.exp(1 / t) / (math.exp(1 / t) + math.exp(0)))
    assert info_nce_mean(a, b, t, symmetric=False).item() == pytest.approx(expected, rel=1e-6)
    assert info_nce_mean(a, b, t).item() == pytest.approx(expected, rel=1e-6)


def test_info_nce_mean_asymmetric_case() -> None:
    a = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    b = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    t = 1.0
    c = 1 / math.sqrt(2)
    # rows of a: [1, 0] and [c, c]
    row0 = -math.log(math.exp(1) / (math.exp(1) + math.exp(0)))
    row1 = -math.log(math.exp(c) / (math.exp(c) + math.exp(c)))
    assert info_nce_mean(a, b, t, symmetric=False).item() == pytest.approx((row0 + row1) / 2, 1e-6)
    # columns: b_0 vs a: [1, c] -> positive a_0; b_1: [0, c] -> positive a_1
    col0 = -math.log(math.exp(1) / (math.exp(1) + math.exp(c)))
    col1 = -math.log(math.exp(c) / (math.exp(0) + math.exp(c)))
    sym = 0.5 * ((row0 + row1) / 2 + (col0 + col1) / 2)
    assert info_nce_mean(a, b, t).item() == pytest.approx(sym, 1e-6)


def test_info_nce_sum_hand_checked() -> None:
    """Summed over rows, each row against the given candidates (RLMRec's cal_infonce_loss)."""
    a = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    b = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    cands = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    t = 0.5
    c = 1 / math.sqrt(2)
    row0 = -math.log(math.exp(1 / t) / (math.exp(1 / t) + math.exp(0) + math.exp(-1 / t)))
    row1 = -math.log(math.exp(c / t) / (math.exp(c / t) + math.exp(c / t)
                                        + math.exp(-c / t)))
    assert info_nce_sum(a, b, cands, t).item() == pytest.approx(row0 + row1, rel=1e-6)
    # against its own positives it is info_nce_mean's a->b term times the row count
    assert info_nce_sum(a, b, b, t).item() == pytest.approx(
        2 * info_nce_mean(a, b, t, symmetric=False).item(), rel=1e-6)


def test_soft_targets_mix_one_hot() -> None:
    t = torch.eye(3)
    h = torch.eye(3)
    t2i, i2t = soft_targets(t, h, temp=1.0, alpha=0.4)
    e = math.e
    on, off = e / (e + 2), 1 / (e + 2)
    assert t2i[0, 0].item() == pytest.approx(0.4 + 0.6 * on, 1e-6)
    assert t2i[0, 1].item() == pytest.approx(0.6 * off, 1e-6)
    assert torch.allclose(t2i.sum(1), torch.ones(3))
    assert torch.allclose(i2t, t2i.T)  # symmetric similarity here


def test_correspondence_kl_zero_when_student_matches_teacher() -> None:
    torch.manual_seed(0)
    z, h = torch.randn(5, 4), torch.randn(5, 4)
    t2i, i2t = soft_targets(z, h, temp=0.5, alpha=0.0)
    assert correspondence_kl(z, h, t2i, i2t, 0.5).item() == pytest.approx(0.0, abs=1e-6)
    other = torch.randn(5, 4)
    assert correspondence_kl(other, h, t2i, i2t, 0.5).item() > 1e-3


def test_correspondence_kl_hand_checked() -> None:
    z = torch.eye(2)
    h = torch.eye(2)
    target = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # student softmax of [1, 0] (temp 1): p = e/(e+1); KL(one-hot || q) = -log p
    expected = -math.log(math.e / (math.e + 1))
    assert correspondence_kl(z, h, target, target, 1.0).item() == pytest.approx(expected, 1e-6)


def test_shared_logits_give_the_separate_losses() -> None:
    # MCS and ITCM at one temperature share one logits matrix: same values, same gradients.
    torch.manual_seed(0)
    z = torch.randn(5, 4, requires_grad=True)
    h = torch.randn(5, 4)
    t2i, i2t = soft_targets(torch.randn(5, 4), torch.randn(5, 4), 0.3, 0.4)
    nce, kl = nce_and_kl_from_logits(cosine_logits(z, h, 0.3), t2i, i2t)
    ref_nce, ref_kl = info_nce_mean(z, h, 0.3), correspondence_kl(z, h, t2i, i2t, 0.3)
    assert nce.item() == pytest.approx(ref_nce.item(), rel=1e-6)
    assert kl.item() == pytest.approx(ref_kl.item(), rel=1e-6)
    g = torch.autograd.grad(nce + 2 * kl, z)[0]
    g_ref = torch.autograd.grad(ref_nce + 2 * ref_kl, z)[0]
    assert torch.allclose(g, g_ref, atol=1e-6)


@pytest.mark.parametrize("alpha", [0.0, 0.4, 1.0])
@pytest.mark.parametrize("n", [1, 2, 9])
@pytest.mark.parametrize("temp", [0.3, 0.01])
@pytest.mark.parametrize("bounded", [True, False])
def test_fused_nce_and_kl_matches_the_autograd_reference(alpha: float, n: int, temp: float,
                                                        bounded: bool) -> None:
    # The closed-form forward and backward give the reference losses and gradients, on both
    # sides of the logits, at the edges of the one-hot mix (pure softmax, pure one-hot), with
    # one shared exp (bounded logits, t 0.3) and with the general path (unbounded, or t 0.01
    # whose span exp could underflow).
    g = torch.Generator().manual_seed(n)
    z, h = (torch.randn(n, 6, generator=g, dtype=torch.float64, requires_grad=True)
            for _ in range(2))
    tz, th = torch.randn(n, 6, generator=g, dtype=torch.float64), torch.randn(
        n, 6, generator=g, dtype=torch.float64)
    ref = nce_and_kl_from_logits(cosine_logits(z, h, temp), *soft_targets(tz, th, temp, alpha))
    got = nce_and_kl(cosine_logits(z, h, temp), soft_target_sums(tz, th, temp, alpha),
                     1 / temp if bounded else None)
    for a, b in zip(got, ref, strict=True):
        assert a.item() == pytest.approx(b.item(), rel=1e-9, abs=1e-10)
    g_got = torch.autograd.grad(2 * got[0] + 3 * got[1], (z, h))
    g_ref = torch.autograd.grad(2 * ref[0] + 3 * ref[1], (z, h))
    for a, b in zip(g_got, g_ref, strict=True):
        assert torch.allclose(a, b, atol=1e-10)


@pytest.mark.parametrize("n", [1, 2, 9])
@pytest.mark.parametrize("temp", [0.2, 0.01])
def test_fused_info_nce_matches_info_nce_mean(n: int, temp: float) -> None:
    # MCS without ITCM and the coordination term: the closed-form pass with one-hot targets
    # gives the symmetric InfoNCE and its gradients (float64)
    g = torch.Generator().manual_seed(n)
    a, b = (torch.randn(n, 5, generator=g, dtype=torch.float64, requires_grad=True)
            for _ in range(2))
    got, ref = info_nce_fused(a, b, temp), info_nce_mean(a, b, temp)
    assert got.item() == pytest.approx(ref.item(), rel=1e-9, abs=1e-12)
    for x, y in zip(torch.autograd.grad(got, (a, b)), torch.autograd.grad(ref, (a, b)),
                    strict=True):
        assert torch.allclose(x, y, atol=1e-10)


def test_fused_nce_and_kl_hand_checked() -> None:
    # Logits diag(2, 2) with zeros elsewhere, one-hot targets: every row and column has
    # log-softmax 2 - log(e^2 + 1) at the diagonal, so NCE = KL = log(e^2 + 1) - 2.
    logits = (2 * torch.eye(2, dtype=torch.float64)).requires_grad_()
    targets = soft_target_sums(torch.eye(2), torch.eye(2), 1.0, 1.0)
    assert torch.equal(targets.q, 2 * torch.eye(2)) and targets.neg_entropy.item() == 0.0
    nce, kl = nce_and_kl(logits, targets)
    expected = math.log(math.e ** 2 + 1) - 2
    assert nce.item() == pytest.approx(expected) and kl.item() == pytest.approx(expected)
    assert torch.autograd.gradcheck(lambda x: nce_and_kl(x, targets), (logits,))


def test_ema_update_follows_momentum() -> None:
    student, teacher = nn.Linear(3, 2), nn.Linear(3, 2)
    with torch.no_grad():
        for p in teacher.parameters():
            p.fill_(1.0)
        for p in student.parameters():
            p.fill_(3.0)
    ema_update(teacher, student, momentum=0.9)
    for p in teacher.parameters():
        assert torch.allclose(p, torch.full_like(p, 0.9 * 1.0 + 0.1 * 3.0))
    ema_update(teacher, student, momentum=1.0)  # frozen teacher
    for p in teacher.parameters():
        assert torch.allclose(p, torch.full_like(p, 1.2))


def test_attention_pooling_is_weighted_and_normalised() -> None:
    phrases = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    rows = SparseRows(torch.tensor([0, 0, 1]), torch.tensor([0, 1, 2]),
                      torch.tensor([0.75, 0.25, 1.0]), 2)
    mean = TextEncoder(2, 4, "mean").pool(rows, phrases)
    assert torch.allclose(mean, torch.tensor([[0.75, 0.25], [1.0, 1.0]]))
    att = TextEncoder(2, 4, "attention")
    with torch.no_grad():
        att.query.copy_(torch.tensor([math.log(3.0), 0.0]))  # phrase 0 logit ln 3, phrase 1: 0
    pooled = att.pool(rows, phrases)
    w0 = 0.75 * 3 / (0.75 * 3 + 0.25)
    assert torch.allclose(pooled[0], torch.tensor([w0, 1 - w0]), atol=1e-6)


def test_prototype_mixture_is_convex_combination() -> None:
    torch.manual_seed(0)
    enc = PrototypeEncoder(4, 3, temp=0.1, residual=False)
    e = torch.randn(6, 4)
    m = enc(e)
    w = torch.linalg.lstsq(enc.prototypes.detach().T, m.detach().T).solution.T
    assert torch.allclose(w.sum(1), torch.ones(6), atol=1e-4)
    assert (w > -1e-4).all()

"""The LMMRec aligner on a tiny hand-built profile set: which parameters get gradients."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from lmmrec.align.aligners import LMMRecAligner, LMMRecConfig
from lmmrec.align.wrapper import AlignedModel
from lmmrec.backbones import backbone_config, build_backbone
from lmmrec.text.inputs import build_inputs
from lmmrec.text.profiles import Profiles


def tiny_profiles(n_users: int = 6, n_items: int = 5, n_phrases: int = 8) -> Profiles:
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(n_phrases, 16)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    # two reviews per user (and per item where possible)
    ru = np.repeat(np.arange(n_users), 2)
    ri = np.arange(len(ru)) % n_items
    n = len(ru)
    rw = sp.csr_matrix((np.ones(2 * n, np.float32),
                        (np.repeat(np.arange(n), 2), rng.integers(0, n_phrases, 2 * n))),
                       shape=(n, n_phrases))
    rw.sum_duplicates()
    to_u = sp.csr_matrix((np.ones(n), (ru, np.arange(n))), shape=(n_users, n))
    to_i = sp.csr_matrix((np.ones(n), (ri, np.arange(n))), shape=(n_items, n))
    return Profiles([f"p{k}" for k in range(n_phrases)], emb, (to_u @ rw).tocsr(),
                    sp.csr_matrix((n_users, n_phrases), dtype=np.float32),
                    (to_i @ rw).tocsr(), ru, ri, rw, rw)


def make_model(**cfg) -> AlignedModel:
    cfg.setdefault("every", 1)  # these tests look at every step's losses
    torch.manual_seed(0)
    p = tiny_profiles()
    train = sp.csr_matrix((np.ones(len(p.review_user)), (p.review_user, p.review_item)),
                          shape=(6, 5))
    backbone = build_backbone("lightgcn", 6, 5, train, backbone_config("lightgcn", {"dim": 8}))
    deg = (np.diff(train.indptr), np.bincount(train.indices, minlength=5))
    aligner = LMMRecAligner(build_inputs(p), 8, LMMRecConfig(**cfg), backbone, deg)
    return AlignedModel(backbone, aligner)


def test_gradients_reach_students_not_teacher() -> None:
    model = make_model(momentum=0.9)
    batch = (torch.tensor([0, 1, 2, 3]), torch.tensor([0, 1, 2, 3]), torch.tensor([4, 4, 0, 1]))
    ue, ie = model(None)
    losses = model.extra_losses(batch, ue, ie)
    assert {"mcs", "coord", "itcm"} <= set(losses)
    sum(losses.values()).backward()
    a = model.aligner
    assert a.text.mlp[0].weight.grad is not None and a.text.mlp[0].weight.grad.abs().sum() > 0
    assert a.proto.prototypes.grad is not None and a.proto.prototypes.grad.abs().sum() > 0
    assert model.backbone.user_emb.grad is not None
    for teacher in (a.teacher_text, a.teacher_proto, a.teacher_backbone):
        for p in teacher.parameters():
            assert not p.requires_grad and p.grad is None
    opt_params = [p for p in model.parameters() if p.requires_grad]
    teacher_ids = {id(p) for m in (a.teacher_text, a.teacher_proto, a.teacher_backbone)
                   for p in m.parameters()}
    assert not teacher_ids & {id(p) for p in opt_params}


def test_teacher_moves_by_momentum_each_step() -> None:
    # every training step, aligned or not: momentum is per step whatever align.every is
    model = make_model(momentum=0.9, every=4)
    a = model.aligner
    with torch.no_grad():
        a.text.mlp[0].weight.add_(1.0)  # student drifts from teacher
    student = a.text.mlp[0].weight.detach().clone()
    batch = (torch.tensor([0, 1, 2]), torch.tensor([0, 1, 2]), torch.tensor([3, 4, 3]))
    for aligned in (True, False, False):
        before = a.teacher_text.mlp[0].weight.clone()
        ue, ie = model(None)
        assert bool(model.extra_losses(batch, ue, ie)) == aligned
        assert torch.allclose(a.teacher_text.mlp[0].weight, 0.9 * before + 0.1 * student,
                              atol=1e-6)


def test_align_step_counts_the_whole_run_and_is_saved() -> None:
    model = make_model(every=3)
    batch = (torch.tensor([0, 1, 2]), torch.tensor([0, 1, 2]), torch.tensor([3, 4, 3]))
    for _ in range(4):
        ue, ie = model(None)
        model.extra_losses(batch, ue, ie)
    state = model.state_dict()
    assert int(state["align_step"]) == 4
    resumed = make_model(every=3)
    resumed.load_state_dict(state)
    assert int(resumed.align_step) == 4
    ue, ie = resumed(None)
    assert not resumed.extra_losses(batch, ue, ie)  # step 4: not a multiple of 3
    old = {k: v for k, v in state.items() if k != "align_step"}  # saved before the counter
    resumed.load_state_dict(old)
    assert int(resumed.align_step) == 0


def test_switches_remove_terms() -> None:
    model = make_model(mcs=False, coordination=False, itcm=True, prototypes=False)
    batch = (torch.tensor([0, 1, 2]), torch.tensor([0, 1, 2]), torch.tensor([3, 4, 3]))
    ue, ie = model(None)
    assert set(model.extra_losses(batch, ue, ie)) == {"itcm"}
    assert isinstance(model.aligner.proto, torch.nn.Identity)


def test_eval_mode_fuses_text_side() -> None:
    model = make_model(fusion=0.5, cold_start=False)
    model.eval()
    with torch.no_grad():
        ue, ie = model(None)
        bu, bi = model.backbone(None)
        zu, zi = model.aligner.text_embeddings()
    assert ue.shape[1] == 16 and ie.shape[1] == 16  # backbone dim + text dim
    # score = interaction score + fusion * cos(text_u, text_i) * typical norms: the text
    # side counts whatever its own (arbitrary, cosine-trained) norm is
    cos = torch.nn.functional.normalize(zu, dim=1) @ torch.nn.functional.normalize(zi, dim=1).T
    expected = bu @ bi.T + 0.5 * cos * bu.norm(dim=1).mean() * bi.norm(dim=1).mean()
    assert torch.allclose(ue @ ie.T, expected, atol=1e-5)


def test_teacher_backbone_embeds_once_an_epoch_unless_asked_every_step() -> None:
    batch = (torch.tensor([0, 1, 2]), torch.tensor([0, 1, 2]), torch.tensor([3, 4, 3]))
    for refresh, expected in (("epoch", 1), ("step", 3)):
        model = make_model(teacher_refresh=refresh)
        calls = []
        teacher = model.aligner.teacher_backbone
        teacher.register_forward_hook(lambda *a, c=calls: c.append(1))
        model.on_epoch_start(0)
        for _ in range(3):
            ue, ie = model(None)
            model.extra_losses(batch, ue, ie)
        assert len(calls) == expected
        model.on_epoch_start(1)
        ue, ie = model(None)
        model.extra_losses(batch, ue, ie)
        assert len(calls) == expected + 1


def test_align_every_k_steps_weighted_by_k() -> None:
    batch = (torch.tensor([0, 1, 2]), torch.tensor([0, 1, 2]), torch.tensor([3, 4, 3]))
    ref, amortised = make_model(), make_model(every=3)
    ref.on_epoch_start(0)
    amortised.on_epoch_start(0)
    seen = []
    for step in range(7):
        if step == 5:  # the count runs over epochs: a new epoch does not restart it
            amortised.on_epoch_start(1)
        torch.manual_seed(step)
        ue, ie = ref(None)
        want = ref.extra_losses(batch, ue, ie)
        torch.manual_seed(step)
        ue, ie = amortised(None)
        got = amortised.extra_losses(batch, ue, ie)
        seen.append(bool(got))
        if got:
            assert set(got) == set(want)
            for k in want:
                assert torch.allclose(got[k], 3 * want[k], atol=1e-6), k
        ref.on_epoch_start(0)  # keep the reference aligning (and its teacher in step)
        ref.aligner._teacher_out = amortised.aligner._teacher_out
    assert seen == [True, False, False, True, False, False, True]


def test_epoch_teacher_outputs_are_the_teacher_on_every_entity() -> None:
    model = make_model(momentum=0.5)
    a = model.aligner
    batch = (torch.tensor([0, 1, 2, 5]), torch.tensor([0, 1, 2, 3]), torch.tensor([4, 4, 0, 1]))
    model.on_epoch_start(0)
    ue, ie = model(None)
    model.extra_losses(batch, ue, ie)
    (tzu, thu), (tzi, thi) = a._teacher_out
    with torch.no_grad():
        # the cache was made after this step's EMA update: recompute from those weights
        a.teacher_backbone.eval()
        bu, bi = a.teacher_backbone(None)
        pu, pi = a._pooled(a.teacher_text)
        assert torch.allclose(tzu, a.teacher_text(pu)) and torch.allclose(tzi, a.teacher_text(pi))
        assert torch.allclose(thu, a.teacher_proto(bu)) and torch.allclose(thi, a.teacher_proto(bi))
    assert tzu.shape[0] == 6 and tzi.shape[0] == 5


def test_coordination_sees_at_most_coord_sample_entities(monkeypatch) -> None:
    from lmmrec.align.aligners import lmmrec as aligners

    model = make_model(coord_sample=2)
    sizes = []
    real = aligners.LMMRecAligner._review_pairs

    def spy(self, u, i):  # noqa: ANN001, ANN202
        sizes.append((len(u), len(i)))
        return real(self, u, i)

    monkeypatch.setattr(aligners.LMMRecAligner, "_review_pairs", spy)
    batch = (torch.tensor([0, 1, 2, 3, 4]), torch.tensor([0, 1, 2, 3]),
             torch.tensor([4, 4, 0, 1]))
    ue, ie = model(None)
    assert "coord" in model.extra_losses(batch, ue, ie)
    assert sizes == [(2, 2)]


def test_epoch_and_step_teacher_agree_on_an_epochs_first_step() -> None:
    """Both refresh modes see the same teacher right after the first EMA update; later steps
    of an epoch differ only in that the epoch mode keeps its snapshot."""
    batch = (torch.tensor([0, 1, 2, 5]), torch.tensor([0, 1, 2, 3]), torch.tensor([4, 4, 0, 1]))
    got = {}
    for refresh in ("epoch", "step"):
        model = make_model(teacher_refresh=refresh, momentum=0.5)
        with torch.no_grad():
            model.aligner.text.mlp[0].weight.add_(0.3)  # the EMA moves the teacher
        model.on_epoch_start(0)
        torch.manual_seed(1)
        ue, ie = model(None)
        got[refresh] = model.extra_losses(batch, ue, ie)
    assert set(got["epoch"]) == set(got["step"])
    for k in got["step"]:
        assert torch.allclose(got["epoch"][k], got["step"][k], atol=1e-6), k


def test_reviews_without_phrases_make_no_coordination_pairs() -> None:
    p = tiny_profiles()
    rw = p.review_user_w.tolil()
    rw[0, :] = 0  # user 0's first review: no phrase (e.g. only disappointments)
    rw = rw.tocsr()
    rw.eliminate_zeros()
    p = Profiles(p.phrases, p.embeddings, p.user_pos, p.user_neg, p.item, p.review_user,
                 p.review_item, rw, p.review_item_w)
    inputs = build_inputs(p)
    indptr, reviews = inputs.user_reviews
    assert list(reviews[indptr[0]:indptr[1]]) == [1]  # review 0 left out
    assert list(reviews[indptr[1]:indptr[2]]) == [2, 3]
    from lmmrec.text.inputs import sample_review_pairs

    ents, a, b = sample_review_pairs(inputs.user_reviews, np.arange(6))
    assert 0 not in ents and (inputs.review_user_vec[a].abs().sum(1) > 0).all()


def test_rlmrec_con_matches_rlmrecs_loss_by_hand() -> None:
    """kd = [Σ_u −log e^{s(u,u')}/Σ_{all users v} e^{s(u,v')} + the same for the positive
    and the negative items, each against the batch's own item profiles] / B, s = cos / τ."""
    from lmmrec.align.aligners import RLMRecConAligner, RLMRecConConfig

    torch.manual_seed(0)
    p = tiny_profiles()
    summ_u, summ_i = torch.randn(6, 16), torch.randn(5, 16)
    inputs = build_inputs(p, summ_u.numpy(), summ_i.numpy())
    a = RLMRecConAligner(inputs, 8, RLMRecConConfig(weight=1.0, temp=0.5))
    assert isinstance(a.mlp[1], torch.nn.LeakyReLU) and a.mlp[1].negative_slope == 0.01
    ue, ie = torch.randn(6, 8), torch.randn(5, 8)
    users, pos, neg = torch.tensor([0, 1, 1, 4]), torch.tensor([0, 2, 3, 3]), torch.tensor([4, 1, 0, 0])
    got = a.losses((users, pos, neg), ue, ie, None)["rlmrec_con"]
    with torch.no_grad():
        pu, pi = a.mlp(summ_u), a.mlp(summ_i)

    def cos(x, y):  # noqa: ANN001, ANN202
        return float(torch.nn.functional.cosine_similarity(x, y, dim=0)) / 0.5

    def term(emb, prf, rows, pool):  # noqa: ANN001, ANN202
        total = 0.0
        for r in rows.tolist():
            denom = sum(np.exp(cos(emb[r], prf[c])) for c in pool)
            total += -np.log(np.exp(cos(emb[r], prf[r])) / denom)
        return total

    want = (term(ue, pu, users, range(6)) + term(ie, pi, pos, pos.tolist())
            + term(ie, pi, neg, neg.tolist())) / 4
    assert abs(float(got.detach()) - want) < 1e-4


def test_all_entity_passes_in_chunks_give_the_same_vectors(monkeypatch) -> None:
    # Encoding every user and item a chunk at a time (memory at 10^6 entities) changes no
    # vector: the teacher's epoch outputs and the scoring side's text vectors.
    from lmmrec.align.aligners import lmmrec as aligners

    model = make_model()
    a = model.aligner
    whole = (a.text_embeddings(), a._teacher_outputs())
    monkeypatch.setattr(aligners, "CHUNK_ROWS", 2)  # 6 users, 5 items: several chunks each
    chunked = (a.text_embeddings(), a._teacher_outputs())
    flat = lambda x: [t for y in x for t in (flat(y) if isinstance(y, tuple) else [y])]  # noqa: E731
    for w, c in zip(flat(whole), flat(chunked), strict=True):
        assert w.shape == c.shape and torch.allclose(w, c, atol=1e-6)

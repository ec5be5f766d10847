"""The baselines as the authors' released code ran them, against references from the formulas.

Every reference below is written from the definitions (one-hot targets, explicit sums and
loops over classes and images, float64), independently of the package's code paths (no
``scatter_add``, no fused statistics): Dice pooled over the batch or per image with absent
classes skipped or zeroed-in-the-mean and ``smooth``/``eps``; binary (one-logit) Generalized
Dice and DB1; DiceBias with the mean over all classes; the sigmoid one-vs-rest focal loss.
Inputs have ignored pixels, classes absent from one image and one class absent from the batch.
"""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from loss_cases import random_batch

from mmseg_marginal.losses import (
    ClasswiseDiceLoss,
    DiceBiasLoss,
    GeneralizedDiceLoss,
    SigmoidFocalLoss,
    SoftmaxFocalLoss,
)

TOL = dict(rtol=1e-10, atol=1e-12)
E10 = 1e-10  # proportion smoothing of the paper's code


def binary_batch(seed: int = 1) -> tuple:
    """Logits ``(3, 1, 4, 5)`` and labels {0, 1, 255}; image 2 has no foreground pixel."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(3, 1, 4, 5, generator=g, dtype=torch.float64) * 2
    label = torch.randint(0, 2, (3, 4, 5), generator=g)
    label[torch.rand(3, 4, 5, generator=g) < 0.2] = 255
    label[2][label[2] == 1] = 0
    label[0, 0, 0] = 1
    return z, label


def probs_and_onehot(z: torch.Tensor, label: torch.Tensor, binary: bool, background: bool):
    """``p (B, C, P)``, one-hot ``t (B, C, P)`` and valid mask ``v (B, P)`` from definitions."""
    b = z.shape[0]
    v = (label != 255).reshape(b, -1).to(z.dtype)
    lab = torch.where(label == 255, 0, label).reshape(b, -1)
    if binary:
        s = torch.sigmoid(z.reshape(b, 1, -1))
        y = lab.unsqueeze(1).to(z.dtype)
        if background:
            return torch.cat([1 - s, s], 1), torch.cat([1 - y, y], 1), v
        return s, y, v
    k = z.shape[1]
    p = torch.softmax(z.reshape(b, k, -1), 1)
    t = F.one_hot(lab, k).permute(0, 2, 1).to(z.dtype)
    return p, t, v


def units(p, t, v, reduction):
    """The (I, S, G) of each unit: every image, or the whole batch as one unit."""
    out = []
    rows = [slice(None)] if reduction == "batch" else [slice(i, i + 1) for i in range(len(p))]
    for r in rows:
        pv, tv = p[r] * v[r].unsqueeze(1), t[r] * v[r].unsqueeze(1)
        out.append(((pv * tv).sum((0, 2)), pv.sum((0, 2)), tv.sum((0, 2))))
    return out


def ref_dice(z, label, log, reduction, absent, smooth, eps, binary):
    p, t, v = probs_and_onehot(z, label, binary, background=False)
    per_unit = []
    for inter, size_p, size_g in units(p, t, v, reduction):
        k = len(inter)
        terms = []
        for c in range(k):
            if size_g[c] == 0:
                continue  # absent: 0 in both modes, counted in the mean only with 'zero'
            den = size_p[c] + size_g[c] + smooth
            d = (2 * inter[c] + smooth) / (max(den, eps) if eps > 0 else den)
            if log:
                terms.append(-torch.log(max(d, torch.tensor(eps)) if eps > 0 else d))
            else:
                terms.append(1 - d)
        n = k if absent == "zero" else len(terms)
        per_unit.append(sum(terms) / n if terms else z.new_zeros(()))
    return sum(per_unit) / len(per_unit)


DICE_VARIANTS = list(
    itertools.product(
        [False, True],  # log
        ["image", "batch"],  # reduction
        ["skip", "zero"],  # absent
        [(1e-6, 0.0), (0.0, 1e-7)],  # smooth, eps
        [False, True],  # binary
    )
)


def _dice_id(v):
    log, red, absent, (smooth, eps), binary = v
    return f"{'log' if log else 'lin'}-{red}-{absent}-s{smooth}-e{eps}-{'bin' if binary else 'mc'}"


@pytest.mark.parametrize("variant", DICE_VARIANTS, ids=_dice_id)
def test_classwise_dice_variants_match_the_formula(variant):
    log, reduction, absent, (smooth, eps), binary = variant
    z, label = binary_batch() if binary else random_batch(b=3, seed=2)
    loss = ClasswiseDiceLoss(
        log=log,
        use_sigmoid=binary,
        pooling=reduction,
        absent=absent,
        smooth=smooth,
        eps=eps,
        loss_weight=0.7,
    )
    expected = ref_dice(z, label, log, reduction, absent, smooth, eps, binary)
    torch.testing.assert_close(loss(z, label), 0.7 * expected, **TOL)
    assert torch.autograd.gradcheck(lambda x: loss(x, label), (z.clone().requires_grad_(),))


def test_authors_dice_differs_from_the_paper_text_dice():
    """On this batch (class 4 absent from the batch, class 3 from image 0) the variants differ,
    and the batch-pooled Dice of one image equals its per-image Dice."""
    z, label = random_batch(b=3, seed=2)
    text = ClasswiseDiceLoss()(z, label)
    theirs = ClasswiseDiceLoss(pooling="batch", absent="zero", smooth=0.0, eps=1e-7)(z, label)
    assert abs(text.item() - theirs.item()) > 1e-3
    one = (z[:1], label[:1])
    torch.testing.assert_close(
        ClasswiseDiceLoss(pooling="batch", absent="zero")(*one),
        ClasswiseDiceLoss(pooling="image", absent="zero")(*one),
        **TOL,
    )


def test_authors_log_dice_clamps_an_underflowed_dice_at_eps():
    z = torch.zeros(1, 2, 4, 4, dtype=torch.float64)
    z[:, 1] = 800.0  # p(class 0) = exp(-800) underflows to 0 in float64
    label = torch.zeros(1, 4, 4, dtype=torch.long)
    loss = ClasswiseDiceLoss(log=True, pooling="batch", absent="zero", smooth=0.0, eps=1e-7)
    # class 0: Dice 0 clamped to 1e-7; class 1 absent (0, counted): mean over K = 2
    assert loss(z, label).item() == pytest.approx(-math.log(1e-7) / 2, rel=1e-12)


def ref_gdice(z, label, reduction, eps, binary):
    p, t, v = probs_and_onehot(z, label, binary, background=True)
    vals = []
    for inter, size_p, size_g in units(p, t, v, reduction):
        num, den = 0.0, 0.0
        for c in range(len(inter)):
            if eps > 0:
                w = 1 / max(size_g[c] ** 2, eps)
                num += w * inter[c]
                den += max(w * (size_p[c] + size_g[c]), eps)
            elif size_g[c] > 0:
                w = 1 / size_g[c] ** 2
                num += w * inter[c]
                den += w * (size_p[c] + size_g[c])
        vals.append(1 - 2 * num / den if size_g.sum() > 0 else z.new_zeros(()))
    return sum(vals) / len(vals)


@pytest.mark.parametrize("binary", [False, True], ids=["mc", "bin"])
@pytest.mark.parametrize("reduction", ["image", "batch"])
@pytest.mark.parametrize("eps", [0.0, 1e-7])
def test_generalized_dice_variants_match_the_formula(binary, reduction, eps):
    z, label = binary_batch() if binary else random_batch(b=3, seed=2)
    loss = GeneralizedDiceLoss(use_sigmoid=binary, pooling=reduction, eps=eps)
    expected = ref_gdice(z, label, reduction, eps, binary)
    torch.testing.assert_close(loss(z, label), expected, **TOL)
    assert torch.autograd.gradcheck(lambda x: loss(x, label), (z.clone().requires_grad_(),))


def test_binary_gdice_hand_value():
    """One image, sigmoid (.5, .75, .25) on labels (1, 0, 1) plus an ignored pixel."""
    z = torch.tensor([[[[0.0, math.log(3), -math.log(3), 9.0]]]], dtype=torch.float64)
    label = torch.tensor([[[1, 0, 1, 255]]])
    # foreground: I = .5 + .25, S = 1.5, G = 2; background (1 - sigmoid = .5, .25, .75):
    # I = .25, S = 1.5, G = 1
    num = 2 * (0.75 / 4 + 0.25 / 1)
    den = (1.5 + 2) / 4 + (1.5 + 1) / 1
    assert GeneralizedDiceLoss(use_sigmoid=True)(z, label).item() == pytest.approx(
        1 - num / den, rel=1e-12
    )


def ref_dice_bias(z, label, tau, mode):
    b = z.shape[0]
    vals = []
    for i in range(b):
        valid = label[i] != 255
        n = int(valid.sum())
        if mode == "binary":
            s = torch.sigmoid(tau * z[i, 0])[valid]
            y1 = (int((label[i][valid] == 1).sum()) + E10) / (n + E10)
            p1 = (s.sum() + E10) / (n + E10)
            vals.append(torch.log(p1 + y1 + E10) if n > 0 else z.new_zeros(()))
            continue
        k = z.shape[1]
        p = torch.softmax(tau * z[i], 0)[:, valid]
        terms = []
        for c in range(k):
            count = int((label[i][valid] == c).sum())
            y_c = (count + E10) / (n + E10)
            p_c = (p[c].sum() + E10) / (n + E10)
            if mode == "mean" and n > 0:
                terms.append(torch.log(p_c + y_c + E10))
            elif count > 0:
                terms.append(torch.log(p_c + y_c))
        vals.append(sum(terms, z.new_zeros(())) / (k if mode == "mean" else 1))
    return sum(vals) / b


@pytest.mark.parametrize("mode", ["sum", "mean", "binary"])
@pytest.mark.parametrize("tau", [1.0, 3.0])
def test_dice_bias_variants_match_the_formula(mode, tau):
    binary = mode == "binary"
    z, label = binary_batch() if binary else random_batch(b=3, seed=2)
    label[1] = 255  # an image without valid pixels contributes 0
    if binary:
        loss = DiceBiasLoss(use_sigmoid=True, temperature=tau, loss_weight=0.1)
    else:
        loss = DiceBiasLoss(class_reduction=mode, temperature=tau, loss_weight=0.1)
    expected = ref_dice_bias(z, label, tau, mode)
    torch.testing.assert_close(loss(z, label), 0.1 * expected, **TOL)
    assert torch.autograd.gradcheck(lambda x: loss(x, label), (z.clone().requires_grad_(),))


def test_dice_bias_mean_is_about_one_kth_of_the_sum_when_all_classes_present():
    g = torch.Generator().manual_seed(3)
    z = torch.randn(2, 4, 8, 8, generator=g, dtype=torch.float64)
    label = torch.arange(4).repeat(2, 8, 2)  # every class in every image
    total = DiceBiasLoss()(z, label)
    mean = DiceBiasLoss(class_reduction="mean")(z, label)
    torch.testing.assert_close(mean, total / 4, rtol=1e-8, atol=0)


def ref_sigmoid_focal(z, label, gamma, alpha):
    b, k = z.shape[:2]
    valid = label != 255
    n = int(valid.sum())
    total = z.new_zeros(())
    for c in range(k):
        t = (label == (1 if k == 1 else c)).to(z.dtype)[valid]
        s = torch.sigmoid(z[:, c])[valid]
        q = torch.where(t == 1, s, 1 - s)
        term = (1 - q) ** gamma * -torch.log(q)
        if alpha is not None:
            term = term * torch.where(t == 1, z.new_tensor(alpha), z.new_tensor(1 - alpha))
        total = total + term.sum() / n  # mean over the valid pixels, one class at a time
    return total


@pytest.mark.parametrize("binary", [False, True], ids=["mc", "bin"])
@pytest.mark.parametrize("gamma,alpha", [(2.0, None), (0.0, None), (2.0, 0.25), (0.5, 0.8)])
def test_sigmoid_focal_matches_the_formula(binary, gamma, alpha):
    z, label = binary_batch() if binary else random_batch(b=3, seed=2)
    loss = SigmoidFocalLoss(gamma=gamma, alpha=alpha, loss_weight=2.0)
    expected = ref_sigmoid_focal(z, label, gamma, alpha)
    torch.testing.assert_close(loss(z, label), 2.0 * expected, **TOL)
    same = SoftmaxFocalLoss(gamma=gamma, alpha=alpha, use_sigmoid=True, loss_weight=2.0)
    torch.testing.assert_close(same(z, label), loss(z, label), rtol=0, atol=0)
    assert torch.autograd.gradcheck(lambda x: loss(x, label), (z.clone().requires_grad_(),))


def test_sigmoid_focal_gamma_zero_is_summed_binary_cross_entropy():
    z, label = random_batch(b=2, seed=4)
    valid = label != 255
    onehot = F.one_hot(torch.where(valid, label, 0), z.shape[1]).permute(0, 3, 1, 2)
    bce = F.binary_cross_entropy_with_logits(z, onehot.to(z.dtype), reduction="none")
    expected = (bce.sum(1) * valid).sum() / valid.sum()
    torch.testing.assert_close(SigmoidFocalLoss(gamma=0.0)(z, label), expected, **TOL)


AUTHORS_AND_TEXT = [
    ClasswiseDiceLoss(),
    ClasswiseDiceLoss(log=True),
    ClasswiseDiceLoss(pooling="batch", absent="zero", smooth=0.0, eps=1e-7),
    ClasswiseDiceLoss(log=True, pooling="batch", absent="zero", smooth=0.0, eps=1e-7),
    GeneralizedDiceLoss(),
    GeneralizedDiceLoss(pooling="batch"),
    GeneralizedDiceLoss(pooling="batch", eps=1e-7),
    DiceBiasLoss(),
    DiceBiasLoss(class_reduction="mean"),
    SoftmaxFocalLoss(),
    SigmoidFocalLoss(),
    SigmoidFocalLoss(alpha=0.25),
]
BINARY = [
    ClasswiseDiceLoss(use_sigmoid=True),
    ClasswiseDiceLoss(use_sigmoid=True, log=True, pooling="batch", smooth=0.0, eps=1e-7),
    GeneralizedDiceLoss(use_sigmoid=True),
    GeneralizedDiceLoss(use_sigmoid=True, pooling="batch", eps=1e-7),
    DiceBiasLoss(use_sigmoid=True),
    SigmoidFocalLoss(),
]


@pytest.mark.parametrize("loss", AUTHORS_AND_TEXT + BINARY, ids=repr)
def test_nan_in_a_logit_propagates_like_cross_entropy(loss):
    binary = any(loss is x for x in BINARY)
    z, label = binary_batch() if binary else random_batch(b=3, seed=2)
    i, j = (label[1] != 255).nonzero()[0].tolist()  # a valid pixel of image 1
    z[1, 0, i, j] = float("nan")
    if not binary:
        assert torch.isnan(F.cross_entropy(z, label, ignore_index=255))
    assert torch.isnan(loss(z, label))


@pytest.mark.parametrize(
    "make,channels,match",
    [
        (lambda: GeneralizedDiceLoss(use_sigmoid=True), 3, "needs 1 logit channel, got 3"),
        (lambda: DiceBiasLoss(use_sigmoid=True), 3, "needs 1 logit channel, got 3"),
        (lambda: ClasswiseDiceLoss(use_sigmoid=True), 2, "needs 1 logit channel, got 2"),
        (lambda: GeneralizedDiceLoss(), 1, "softmax mode needs at least 2 class channels"),
        (lambda: DiceBiasLoss(class_reduction="mean"), 1, "at least 2 class channels, got 1"),
        (lambda: ClasswiseDiceLoss(pooling="batch"), 1, "at least 2 class channels, got 1"),
        (lambda: SoftmaxFocalLoss(), 1, "at least 2 class channels, got 1"),
    ],
)
def test_wrong_channel_count_is_one_value_error(make, channels, match):
    z = torch.randn(2, channels, 4, 4, dtype=torch.float64)
    label = torch.randint(0, 2, (2, 4, 4))
    with pytest.raises(ValueError, match=match):
        make()(z, label)


def test_bad_options_and_binary_labels():
    with pytest.raises(ValueError, match="class_reduction='mean' is a multi-class option"):
        DiceBiasLoss(use_sigmoid=True, class_reduction="mean")
    with pytest.raises(ValueError, match="alpha=0.25 is an option of the sigmoid"):
        SoftmaxFocalLoss(alpha=0.25)
    with pytest.raises(ValueError, match="alpha must be in"):
        SigmoidFocalLoss(alpha=1.5)
    with pytest.raises(ValueError, match="pooling must be one of"):
        ClasswiseDiceLoss(pooling="mean")
    with pytest.raises(ValueError, match="reduction='sum' is not supported"):
        ClasswiseDiceLoss(reduction="sum")
    with pytest.raises(ValueError, match="absent must be one of"):
        ClasswiseDiceLoss(absent="drop")
    with pytest.raises(ValueError, match="pooling must be one of"):
        GeneralizedDiceLoss(pooling="pixel")
    with pytest.raises(ValueError, match="one of them must be > 0"):
        ClasswiseDiceLoss(smooth=0.0, eps=0.0)
    with pytest.raises(ValueError, match="eps must be >= 0"):
        GeneralizedDiceLoss(eps=-1.0)
    z, label = binary_batch()
    label[0, 1, 1] = 2
    for loss in BINARY:
        with pytest.raises(ValueError, match="label value 2"):
            loss(z, label)


@pytest.mark.parametrize("loss", AUTHORS_AND_TEXT, ids=repr)
def test_all_ignored_batch_gives_zero_and_zero_gradient(loss):
    z = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    label = torch.full((2, 4, 4), 255)
    val = loss(z, label)
    (grad,) = torch.autograd.grad(val, z)
    assert val.item() == 0.0
    assert torch.equal(grad, torch.zeros_like(grad))


@pytest.mark.parametrize("loss", AUTHORS_AND_TEXT + BINARY, ids=repr)
def test_3d_logits_equal_the_same_pixels_in_2d(loss):
    binary = any(loss is x for x in BINARY)
    z, label = binary_batch() if binary else random_batch(b=3, h=4, w=6, seed=5)
    b, c, h, w = z.shape
    z3, label3 = z.reshape(b, c, 2, h // 2, w), label.reshape(b, 2, h // 2, w)
    torch.testing.assert_close(loss(z3, label3), loss(z, label), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("loss", AUTHORS_AND_TEXT, ids=repr)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_logits_are_computed_in_float32(loss, dtype):
    g = torch.Generator().manual_seed(6)
    z = ((torch.rand(2, 4, 8, 8, generator=g) * 2 - 1) * 50).to(dtype).requires_grad_()
    label = torch.randint(0, 3, (2, 8, 8), generator=g)
    val = loss(z, label)
    val.backward()
    assert val.dtype == torch.float32 and torch.isfinite(z.grad.float()).all()
    torch.testing.assert_close(val, loss(z.detach().float(), label))

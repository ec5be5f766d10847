"""The paper's identities and bounds on the decomposition terms (Liu et al., Eqs. 1, 16, 18)."""

import math

import pytest
import torch
import torch.nn.functional as F

from mmseg_marginal.losses import ClasswiseDiceLoss, DiceBiasLoss, loss_decomposition


def _batch(seed: int = 0, b: int = 4, k: int = 6, h: int = 7, w: int = 9) -> tuple:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(b, k, h, w, generator=g, dtype=torch.float64) * 3
    label = torch.randint(0, k - 2, (b, h, w), generator=g)  # classes k-2, k-1 absent
    label[torch.rand(b, h, w, generator=g) < 0.25] = 255
    label[-1] = 255  # one image without valid pixels
    return z, label


def _exact_gt_props(label: torch.Tensor, k: int) -> torch.Tensor:
    flat = label.reshape(label.shape[0], -1)
    counts = torch.stack([(flat == c).sum(1) for c in range(k)], 1).double()
    return counts / counts.sum(1, keepdim=True).clamp_min(1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_eq1_log_dice_decomposition(seed):
    z, label = _batch(seed)
    d = loss_decomposition(z, label)
    y = _exact_gt_props(label, z.shape[1])
    log_y = torch.where(y > 0, math.log(2) + torch.log(y.clamp_min(1e-300)), 0.0).sum(1)
    torch.testing.assert_close(d["log_dice"], d["df"] + d["db"] - log_y, rtol=1e-12, atol=1e-12)
    assert torch.all(d["log_dice"][:-1] > 0)
    assert torch.all(torch.stack(list(d.values()))[:, -1] == 0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_eq16_18_ce_decomposition(seed):
    z, label = _batch(seed)
    d = loss_decomposition(z, label)
    torch.testing.assert_close(
        d["ce"], d["cond_entropy"] + d["kl"] + d["gt_entropy"], rtol=1e-12, atol=1e-12
    )
    # the CE term is the usual per-image cross-entropy over valid pixels
    for b in range(z.shape[0] - 1):
        ce = F.cross_entropy(z[b : b + 1], label[b : b + 1], ignore_index=255)
        torch.testing.assert_close(d["ce"][b], ce)
    # H(y) is the entropy of the exact GT proportions
    y = _exact_gt_props(label, z.shape[1])
    torch.testing.assert_close(d["gt_entropy"], -torch.xlogy(y, y).sum(1))


def test_log_dice_and_dice_bias_match_the_losses():
    z, label = _batch(3)
    d = loss_decomposition(z, label)
    for b in range(z.shape[0] - 1):
        zb, lb = z[b : b + 1], label[b : b + 1]
        n_present = int(torch.unique(lb[lb != 255]).numel())
        dice = ClasswiseDiceLoss(log=True, smooth=1e-12)(zb, lb)
        torch.testing.assert_close(dice * n_present, d["log_dice"][b : b + 1].squeeze())
        torch.testing.assert_close(DiceBiasLoss()(zb, lb), d["db"][b], rtol=1e-8, atol=1e-8)


def test_jensen_bounds():
    z, label = _batch(4, b=1, k=5, h=10, w=10)
    lin = ClasswiseDiceLoss()(z, label)
    log = ClasswiseDiceLoss(log=True)(z, label)
    assert log.item() >= lin.item()
    for k in torch.unique(label[label != 255]).tolist():
        only_k = torch.where(label == k, label, 255)  # Omega_k alone: df = DF_k, ce = CE_k
        d = loss_decomposition(z, only_k)
        assert d["df"].item() <= d["ce"].item() + 1e-12
        assert d["df"].item() > 0


def test_proposition1_dice_bias_minimum_at_vertex_of_largest_class():
    """sum_k log(p_k + y_k) over the simplex is smallest at the vertex of argmax_k y_k."""
    g = torch.Generator().manual_seed(0)
    k, n = 4, 20
    counts = torch.tensor([3, 9, 6, 2])  # y = counts / 20, every class present
    label = torch.repeat_interleave(torch.arange(k), counts).reshape(1, 1, n)
    e = -torch.log(torch.rand(400, k, generator=g, dtype=torch.float64))
    points = e / e.sum(1, keepdim=True)  # uniform on the simplex (Dirichlet(1, ..., 1))
    points = torch.cat([points, torch.eye(k, dtype=torch.float64)])
    # every pixel of image b has logits log(point_b): p_hat = point_b exactly
    z = torch.log(points.clamp_min(1e-300)).reshape(-1, k, 1, 1).expand(-1, k, 1, n)
    db = loss_decomposition(z, label.expand(points.shape[0], 1, n))["db"]
    best = int(torch.argmin(db))
    assert best == points.shape[0] - k + int(torch.argmax(counts))
    vertices = db[-k:]
    assert int(vertices.argmin()) == int(torch.argmax(counts))


def test_temperature_and_bad_input():
    z, label = _batch(5)
    d1 = loss_decomposition(z, label, temperature=1.0)
    d10 = loss_decomposition(z, label, temperature=10.0)
    torch.testing.assert_close(d1["df"], d10["df"])  # DF does not involve p_hat
    assert not torch.allclose(d1["kl"], d10["kl"])
    torch.testing.assert_close(  # CE = H(F|K) + KL + H holds for any p_hat
        d10["ce"], d10["cond_entropy"] + d10["kl"] + d10["gt_entropy"]
    )
    bad = label.clone()
    bad[0, 0, 0] = 6
    with pytest.raises(ValueError, match="label value 6"):
        loss_decomposition(z, bad)
    with pytest.raises(ValueError, match="spatial size"):
        loss_decomposition(z, label[:, :, :4])

"""``loss_decomposition`` against a pixel-by-pixel reference written from the definitions.

The identities of Eqs. 1 and 16/18 hold for any ``p_hat`` (they share it between both sides),
so they cannot detect a wrong ``p_hat`` or a wrong pixel mask. Here every term is recomputed
with Python floats, one pixel at a time, at tau = 1 and tau != 1, on batches with ignored
pixels, absent classes, an image without valid pixels and a non-default ignore_index.
"""

import math

import pytest
import torch

from mmseg_marginal.losses import loss_decomposition


def _softmax(values: list, tau: float = 1.0) -> list:
    m = max(values)
    e = [math.exp(tau * (v - m)) for v in values]
    s = sum(e)
    return [x / s for x in e]


def reference_terms(z: torch.Tensor, label: torch.Tensor, ignore: int, tau: float) -> dict:
    """Every term of the module docstring for each image, from its definition."""
    b, k = z.shape[:2]
    zf = z.reshape(b, k, -1).tolist()
    lf = label.reshape(b, -1).tolist()
    out = {key: [] for key in ("df", "db", "cond_entropy", "kl", "gt_entropy", "ce", "log_dice")}
    for img in range(b):
        pixels = [i for i, y in enumerate(lf[img]) if y != ignore]
        n = len(pixels)
        if n == 0:
            for key in out:
                out[key].append(0.0)
            continue
        p = {i: _softmax([zf[img][c][i] for c in range(k)]) for i in pixels}
        s = {i: _softmax([zf[img][c][i] for c in range(k)], tau) for i in pixels}
        regions = {c: [i for i in pixels if lf[img][i] == c] for c in range(k)}
        present = [c for c in range(k) if regions[c]]
        y_hat = {c: len(regions[c]) / n for c in present}
        p_hat = {c: sum(s[i][c] for i in pixels) / n for c in present}
        out["df"].append(
            -sum(math.log(sum(p[i][c] for i in regions[c]) / len(regions[c])) for c in present)
        )
        out["db"].append(sum(math.log(p_hat[c] + y_hat[c]) for c in present))
        out["cond_entropy"].append(
            -sum(math.log(p[i][c] / p_hat[c]) for c in present for i in regions[c]) / n
        )
        out["kl"].append(sum(y_hat[c] * math.log(y_hat[c] / p_hat[c]) for c in present))
        out["gt_entropy"].append(-sum(y_hat[c] * math.log(y_hat[c]) for c in present))
        out["ce"].append(-sum(math.log(p[i][lf[img][i]]) for i in pixels) / n)
        dice = {
            c: 2 * sum(p[i][c] for i in regions[c])
            / (sum(p[i][c] for i in pixels) + len(regions[c]))
            for c in present
        }  # fmt: skip
        out["log_dice"].append(-sum(math.log(dice[c]) for c in present))
    return {key: torch.tensor(vals, dtype=torch.float64) for key, vals in out.items()}


def _batch(seed: int, ignore: int, shape: tuple = (3, 5, 6, 7)) -> tuple:
    g = torch.Generator().manual_seed(seed)
    b, k = shape[:2]
    z = torch.randn(shape, generator=g, dtype=torch.float64) * 3
    spatial = (b,) + shape[2:]
    label = torch.randint(0, k - 1, spatial, generator=g)  # class k-1 absent
    # ignored pixels with logits far from uniform: forgetting the mask changes every term
    mask = torch.rand(spatial, generator=g) < 0.3
    label[mask] = ignore
    z[:, 0][mask] += 8.0
    label[-1] = ignore  # an image without valid pixels
    return z, label


@pytest.mark.parametrize("tau", [1.0, 0.5, 2.5, 10.0])
@pytest.mark.parametrize("ignore", [255, 3])
def test_every_term_equals_the_pixelwise_reference(tau, ignore):
    z, label = _batch(seed=int(tau * 10) + ignore, ignore=ignore)
    got = loss_decomposition(z, label, ignore_index=ignore, temperature=tau)
    want = reference_terms(z, label, ignore, tau)
    assert got.keys() == want.keys()
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=1e-12, atol=1e-12, msg=key)
    assert (want["kl"][:-1] > 0).all()  # p_hat differs from y_hat: the checks are not trivial


def test_volumetric_input_and_no_ignore_index():
    """``(B, K, D, H, W)`` logits; ``ignore_index=None`` counts every pixel."""
    z, label = _batch(seed=7, ignore=4, shape=(2, 4, 3, 4, 5))
    label[label == 4] = 0  # every pixel valid
    got = loss_decomposition(z, label, ignore_index=None, temperature=3.0)
    want = reference_terms(z, label, ignore=-1, tau=3.0)
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=1e-12, atol=1e-12, msg=key)

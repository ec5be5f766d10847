"""mmseg_marginal.analysis.penalty_curves: the curves of the paper's Fig. 2 and their minima."""

import numpy as np
import pytest
from PIL import Image

from mmseg_marginal.analysis.penalty_curves import (
    PENALTIES,
    curve_minima,
    dice_bias_fg,
    dice_bias_two_class,
    kl_penalty,
    l1_penalty,
    penalty_curves,
    plot_penalties,
)

DB1, DB, KL, L1 = PENALTIES


@pytest.mark.parametrize("gt_prop", [0.1, 0.02, 0.3])
def test_minima_where_the_paper_says(gt_prop):
    curves = penalty_curves(gt_prop, num=1001)
    minima = curve_minima(curves)
    # L1 and KL: at the ground-truth proportion; the Dice bias: at an empty foreground
    assert minima[L1] == pytest.approx(gt_prop, abs=1e-9)
    assert minima[KL] == pytest.approx(gt_prop, abs=1e-9)
    assert minima[DB1] == 0.0
    assert minima[DB] == 0.0
    # the zero minima of the divergences, and the Dice bias increasing on [0, y1]
    i = int(round(gt_prop * 1000))
    assert curves[L1][i] == pytest.approx(0, abs=1e-12)
    assert curves[KL][i] == pytest.approx(0, abs=1e-12)
    assert np.all(np.diff(curves[DB1]) > 0)
    assert np.all(np.diff(curves[DB][: i + 1]) > 0)


def test_two_class_dice_bias_moves_to_one_above_half():
    # concave in p1: the minimum is at the end that is smaller, p1 = 1 once y1 > 1/2
    assert curve_minima(penalty_curves(0.7, 101))[DB] == 1.0


def test_hand_computed_values():
    p = np.array([0.0, 0.5, 1.0])
    np.testing.assert_allclose(dice_bias_fg(p, 0.1), np.log([0.1, 0.6, 1.1]))
    np.testing.assert_allclose(
        dice_bias_two_class(p, 0.1), np.log([0.1 * 1.9, 0.6 * 1.4, 1.1 * 0.9])
    )
    # the curves are the losses' marginal_penalty: Bernoulli KL and |y1 - p1| by hand
    kl = kl_penalty(p, 0.1)
    assert kl[0] > 50 and kl[2] > 50  # log of the clamped zero proportion
    assert kl[1] == pytest.approx(0.1 * np.log(0.2) + 0.9 * np.log(1.8), rel=1e-12)
    np.testing.assert_allclose(l1_penalty(p, 0.1), [0.1, 0.4, 0.9])


def test_kl_by_hand_on_a_grid():
    p = np.linspace(0.05, 0.95, 19)
    expected = 0.1 * np.log(0.1 / p) + 0.9 * np.log(0.9 / (1 - p))
    np.testing.assert_allclose(kl_penalty(p, 0.1), expected, rtol=1e-10)
    np.testing.assert_allclose(l1_penalty(p, 0.1), np.abs(p - 0.1), rtol=1e-12)


def test_writes_a_png(tmp_path):
    out = plot_penalties(0.1, str(tmp_path / "fig" / "pen.png"), num=201)
    assert out == tmp_path / "fig" / "pen.png"
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size[0] > 300 and image.size[1] > 200
        pixels = np.asarray(image.convert("L"))
    assert pixels.std() > 5  # something was drawn


@pytest.mark.parametrize("gt_prop", [0.0, 1.0, -0.5])
def test_bad_gt_prop(gt_prop):
    with pytest.raises(ValueError, match=f"got {gt_prop}"):
        penalty_curves(gt_prop)


def test_bad_num():
    with pytest.raises(ValueError, match="num must be >= 3, got 2"):
        penalty_curves(0.1, num=2)

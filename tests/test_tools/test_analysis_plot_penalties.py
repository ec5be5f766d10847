"""tools/analysis/plot_penalties.py: the curves of the paper's Fig. 2 and their minima."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "analysis" / "plot_penalties.py"

spec = importlib.util.spec_from_file_location("plot_penalties", TOOL)
pp = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pp)

DB1, DB, KL, L1 = pp.PENALTIES


@pytest.mark.parametrize("gt_prop", [0.1, 0.02, 0.3])
def test_minima_where_the_paper_says(gt_prop):
    curves = pp.penalty_curves(gt_prop, num=1001)
    minima = pp.curve_minima(curves)
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
    assert pp.curve_minima(pp.penalty_curves(0.7, 101))[DB] == 1.0


def test_hand_computed_values():
    p = np.array([0.0, 0.5, 1.0])
    np.testing.assert_allclose(pp.dice_bias_fg(p, 0.1), np.log([0.1, 0.6, 1.1]))
    np.testing.assert_allclose(
        pp.dice_bias_two_class(p, 0.1), np.log([0.1 * 1.9, 0.6 * 1.4, 1.1 * 0.9])
    )
    # the curves are the losses' marginal_penalty: Bernoulli KL and |y1 - p1| by hand
    kl = pp.kl_penalty(p, 0.1)
    assert kl[0] > 50 and kl[2] > 50  # log of the clamped zero proportion
    assert kl[1] == pytest.approx(0.1 * np.log(0.2) + 0.9 * np.log(1.8), rel=1e-12)
    np.testing.assert_allclose(pp.l1_penalty(p, 0.1), [0.1, 0.4, 0.9])


def test_kl_by_hand_on_a_grid():
    p = np.linspace(0.05, 0.95, 19)
    expected = 0.1 * np.log(0.1 / p) + 0.9 * np.log(0.9 / (1 - p))
    np.testing.assert_allclose(pp.kl_penalty(p, 0.1), expected, rtol=1e-10)
    np.testing.assert_allclose(pp.l1_penalty(p, 0.1), np.abs(p - 0.1), rtol=1e-12)


def test_writes_a_png(tmp_path, capsys):
    out = pp.main(["--gt-prop", "0.1", "--out", str(tmp_path / "fig" / "pen.png"), "--num", "201"])
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size[0] > 300 and image.size[1] > 200
        pixels = np.asarray(image.convert("L"))
    assert pixels.std() > 5  # something was drawn
    printed = capsys.readouterr().out
    assert "KL(y || p)                 minimum at p1 = 0.100" in printed


@pytest.mark.parametrize("gt_prop", [0.0, 1.0, -0.5])
def test_bad_gt_prop(gt_prop):
    with pytest.raises(ValueError, match=f"got {gt_prop}"):
        pp.penalty_curves(gt_prop)

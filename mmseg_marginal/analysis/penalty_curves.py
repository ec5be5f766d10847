"""Label-marginal penalties as functions of the predicted foreground proportion (paper Fig. 2).

Binary case: ground-truth foreground proportion :math:`\\hat{y}_1` (background
:math:`\\hat{y}_0 = 1 - \\hat{y}_1`), predicted proportion :math:`\\hat{p}_1` (background
:math:`1 - \\hat{p}_1`). The curves, as in Liu et al., "The hidden label-marginal biases of
segmentation losses", Fig. 2:

- Dice bias of the foreground Dice, :math:`DB_1(\\hat{p}_1) = \\log(\\hat{p}_1 + \\hat{y}_1)`:
  the term that the log-Dice loss adds to the Dice fidelity term
  (:math:`-\\log \\mathrm{Dice}_1 = -\\log(2\\sum_i y_{i1} p_{i1}) + \\log(\\sum_i y_{i1} +
  \\sum_i p_{i1})`, and :math:`\\sum_i y_{i1} + \\sum_i p_{i1} = N(\\hat{y}_1 + \\hat{p}_1)`).
  It increases with :math:`\\hat{p}_1`: its minimum is at :math:`\\hat{p}_1 = 0`, i.e. it pushes
  the foreground region to vanish;
- the two-class Dice bias :math:`DB = \\sum_{k \\in \\{0, 1\\}} \\log(\\hat{p}_k + \\hat{y}_k)`
  (``DiceBiasLoss``), concave in :math:`\\hat{p}_1`, minimum at :math:`\\hat{p}_1 = 0` whenever
  :math:`\\hat{y}_1 < 1/2` (it compares :math:`\\hat{y}_1(2 - \\hat{y}_1)` at 0 with
  :math:`1 - \\hat{y}_1^2` at 1);
- :math:`D_{KL}(\\hat{y} \\| \\hat{p}) = \\sum_k \\hat{y}_k \\log(\\hat{y}_k / \\hat{p}_k)`, minimum
  0 at :math:`\\hat{p}_1 = \\hat{y}_1`;
- :math:`L_1`: :math:`\\frac{1}{2}\\sum_k |\\hat{y}_k - \\hat{p}_k| = |\\hat{y}_1 - \\hat{p}_1|`
  (class mean, the default of ``LabelMarginalLoss(penalty='l1')``), minimum 0 at
  :math:`\\hat{p}_1 = \\hat{y}_1`.

The log terms are plotted as they are (they are negative); each curve's minimum is marked.

Example::

    from mmseg_marginal.analysis.penalty_curves import curve_minima, penalty_curves

    minima = curve_minima(penalty_curves(gt_prop=0.1))  # {'KL(y || p)': 0.1, ...}
"""

from pathlib import Path
from typing import Callable, Dict

import numpy as np
import torch

from ..extras import require_extra
from ..losses.marginal import marginal_penalty


def _check_gt_prop(gt_prop: float) -> float:
    if not 0.0 < gt_prop < 1.0:
        raise ValueError(f"the ground-truth proportion must be in (0, 1), got {gt_prop}")
    return float(gt_prop)


def dice_bias_fg(pred_prop: np.ndarray, gt_prop: float) -> np.ndarray:
    """Foreground Dice bias :math:`DB_1 = \\log(\\hat{p}_1 + \\hat{y}_1)`."""
    return np.log(pred_prop + gt_prop)


def dice_bias_two_class(pred_prop: np.ndarray, gt_prop: float) -> np.ndarray:
    """Two-class Dice bias :math:`\\log(\\hat{p}_1 + \\hat{y}_1) + \\log(2 - \\hat{p}_1 -
    \\hat{y}_1)`."""
    return np.log(pred_prop + gt_prop) + np.log(2.0 - pred_prop - gt_prop)


def _binary_penalty(pred_prop: np.ndarray, gt_prop: float, penalty: str) -> np.ndarray:
    """The losses' own ``marginal_penalty`` on (background, foreground) columns, float64."""
    pred = torch.as_tensor(np.asarray(pred_prop, dtype=np.float64))
    pred = torch.stack([1 - pred, pred], -1).reshape(-1, 2)
    gt = torch.tensor([[1 - gt_prop, gt_prop]], dtype=torch.float64)
    values = marginal_penalty(gt, pred, penalty=penalty, binary=True)
    return values.numpy().reshape(np.shape(pred_prop))


def kl_penalty(pred_prop: np.ndarray, gt_prop: float) -> np.ndarray:
    """Bernoulli :math:`D_{KL}(\\hat{y} \\| \\hat{p})` (``marginal_penalty(penalty='kl')``).

    At :math:`\\hat{p}_1 \\in \\{0, 1\\}` it is large but finite: the loss clamps the
    predicted proportions to the smallest positive float.
    """
    return _binary_penalty(pred_prop, gt_prop, "kl")


def l1_penalty(pred_prop: np.ndarray, gt_prop: float) -> np.ndarray:
    """:math:`|\\hat{y}_1 - \\hat{p}_1|` (``marginal_penalty(penalty='l1')``, binary)."""
    return _binary_penalty(pred_prop, gt_prop, "l1")


#: The curves of the figure by legend label, each ``fn(pred_prop, gt_prop) -> values``.
PENALTIES: Dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "DB1 = log(p1 + y1)": dice_bias_fg,
    "DB = sum_k log(pk + yk)": dice_bias_two_class,
    "KL(y || p)": kl_penalty,
    "L1 = |y1 - p1|": l1_penalty,
}


def penalty_curves(gt_prop: float, num: int = 1001) -> Dict[str, np.ndarray]:
    """Evaluate every penalty on ``num`` evenly spaced :math:`\\hat{p}_1 \\in [0, 1]`.

    Args:
        gt_prop (float): Ground-truth foreground proportion :math:`\\hat{y}_1 \\in (0, 1)`.
        num (int): Number of grid points (>= 3). Default: 1001 (step 0.001).

    Returns:
        dict[str, np.ndarray]: ``'p'`` (num,) the grid, and one (num,) curve per penalty
        (KL is large but finite at the ends: the loss clamps zero proportions).

    Raises:
        ValueError: if ``gt_prop`` is not in (0, 1) or ``num`` < 3.
    """
    gt_prop = _check_gt_prop(gt_prop)
    if num < 3:
        raise ValueError(f"num must be >= 3, got {num}")
    p = np.linspace(0.0, 1.0, num)
    curves = {"p": p}
    for name, fn in PENALTIES.items():
        curves[name] = fn(p, gt_prop)
    return curves


def curve_minima(curves: Dict[str, np.ndarray]) -> Dict[str, float]:
    """The :math:`\\hat{p}_1` of the grid at which each curve is smallest.

    Args:
        curves (dict[str, np.ndarray]): The output of :func:`penalty_curves`.

    Returns:
        dict[str, float]: Curve name -> grid point of its (first) minimum.
    """
    return {name: float(curves["p"][np.argmin(v)]) for name, v in curves.items() if name != "p"}


def plot_penalties(gt_prop: float, out: str, num: int = 1001) -> Path:
    """Plot the penalties against :math:`\\hat{p}_1` for one :math:`\\hat{y}_1` and save a PNG.

    Args:
        gt_prop (float): Ground-truth foreground proportion :math:`\\hat{y}_1`.
        out (str): Output image path (``.png``).
        num (int): Grid points. Default: 1001.

    Returns:
        Path: The written file.

    Raises:
        ValueError: from :func:`penalty_curves`.
        MissingExtraError: if matplotlib is not installed (the ``analysis`` extra).
    """
    matplotlib = require_extra("matplotlib", "plot_penalties")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = penalty_curves(gt_prop, num)
    minima = curve_minima(curves)
    p = curves["p"]
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    finite_values = []
    for name, values in curves.items():
        if name == "p":
            continue
        shown = np.where(np.isfinite(values), values, np.nan)
        (line,) = ax.plot(p, shown, label=f"{name}  (min at p1={minima[name]:.3f})")
        i = int(np.argmin(values))
        ax.plot(p[i], values[i], "o", color=line.get_color())
        finite_values.append(values[np.isfinite(values)])
    low = min(v.min() for v in finite_values)
    high = max(np.percentile(v, 90) for v in finite_values)
    ax.set_ylim(low - 0.1, high + 0.3)
    ax.axvline(gt_prop, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("predicted foreground proportion p1")
    ax.set_ylabel("penalty")
    ax.set_title(f"Label-marginal penalties, binary case, y1 = {gt_prop:g}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path)
    plt.close(fig)
    return out_path

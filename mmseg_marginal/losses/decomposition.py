"""Decomposition terms of segmentation losses (Liu et al., Eqs. 1, 16 and 18).

Reference: Liu, Dolz, Galdran, Kobbi, Ben Ayed, "The hidden label-marginal biases of
segmentation losses".

For one image with valid pixels ``V`` (label != ignore_index), ``N = |V|``, regions
``Omega_k = {i in V: y_i = k}``, softmax ``p_ik``, GT proportions ``y_k = |Omega_k| / N`` and
predicted proportions ``p_k = (1/N) sum_{i in V} softmax(tau z_i)_k`` (exact, no smoothing):

* ground-truth matching ``DF = -sum_k log((1/|Omega_k|) sum_{i in Omega_k} p_ik)``;
* Dice bias ``DB = sum_k log(p_k + y_k)``;
* conditional entropy (Monte-Carlo) ``H(F|K) = -(1/N) sum_k sum_{i in Omega_k} log(p_ik / p_k)``;
* ``KL(y || p) = sum_k y_k log(y_k / p_k)`` and ``H(y) = -sum_k y_k log y_k``;
* cross-entropy ``CE = -(1/N) sum_{i in V} log p_{i y_i}``;
* log-Dice loss ``-sum_k log Dice_k``, ``Dice_k = 2 sum_{Omega_k} p_ik / (sum_V p_ik + |Omega_k|)``.

Sums over ``k`` run over the classes present in the image. With ``tau = 1`` the identities
``-sum_k log Dice_k = DF + DB - sum_k (log 2 + log y_k)`` (Eq. 1) and
``CE = H(F|K) + KL(y || p) + H(y)`` (Eqs. 16/18) hold exactly; every term here is computed
directly from its definition, not from the identities.
"""

from typing import Dict, Optional

import torch
from torch import Tensor

from .inputs import log_softmax_dim1, prepare_inputs
from .labels import check_labels, class_counts, weighted_class_sums


def loss_decomposition(
    logits: Tensor,
    label: Tensor,
    ignore_index: Optional[int] = 255,
    temperature: float = 1.0,
) -> Dict[str, Tensor]:
    """Per-image decomposition terms of CE and the log-Dice loss.

    Args:
        logits (Tensor): ``(B, K, *spatial)`` logits (any float dtype; computed in float64).
        label (Tensor): ``(B, *spatial)`` integer labels.
        ignore_index (int | None): Label to ignore. Default: 255.
        temperature (float): tau of the predicted proportions ``p_k`` only (DB, H(F|K), KL);
            ``p_ik`` in DF, CE and Dice is the plain softmax. Default: 1.0 (the identities
            hold exactly only then).

    Returns:
        dict[str, Tensor]: float64 tensors of shape ``(B,)``: ``'df'``, ``'db'``,
        ``'cond_entropy'``, ``'kl'``, ``'gt_entropy'``, ``'ce'``, ``'log_dice'``. Images without
        valid pixels get 0 for every term. Differentiable w.r.t. ``logits``.

    Raises:
        ValueError: On shape mismatch or a label outside ``[0, K)`` that is not ignore_index.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    inp = prepare_inputs(logits, label, use_sigmoid=None, name="loss_decomposition")
    z, lab = inp.z, inp.label
    z = z.double()
    k = z.shape[1]
    valid = check_labels(lab, k, ignore_index)
    lab_c = torch.where(valid, lab, 0)
    vf = valid.double()
    n = vf.sum(1)
    n_safe = n.clamp_min(1)
    counts = class_counts(lab_c, valid, k).double()
    present = counts > 0
    zero = z.new_zeros(())

    logp = log_softmax_dim1(z)
    logp_y = torch.gather(logp, 1, lab_c.unsqueeze(1)).squeeze(1)
    p_sum = torch.bmm(logp.exp(), vf.unsqueeze(2)).squeeze(2)
    if temperature == 1.0:
        p_hat = p_sum / n_safe.unsqueeze(1)
    else:
        s = log_softmax_dim1(z * temperature).exp()
        p_hat = torch.bmm(s, vf.unsqueeze(2)).squeeze(2) / n_safe.unsqueeze(1)
    y_hat = counts / n_safe.unsqueeze(1)

    inter = weighted_class_sums(lab_c, logp_y.exp() * vf, valid, k)
    safe_counts = torch.where(present, counts, torch.ones_like(counts))
    safe_inter = torch.where(present, inter, torch.ones_like(inter))
    df = torch.where(present, -torch.log(safe_inter / safe_counts), zero).sum(1)
    safe_sum = torch.where(present, p_hat + y_hat, torch.ones_like(p_hat))
    db = torch.log(safe_sum).masked_fill(~present, 0).sum(1)

    ce = -(logp_y * vf).sum(1) / n_safe
    safe_p_hat = torch.where(present, p_hat, torch.ones_like(p_hat))
    log_p_hat_y = torch.gather(torch.log(safe_p_hat), 1, lab_c)
    cond_entropy = -((logp_y - log_p_hat_y) * vf).sum(1) / n_safe
    kl = (torch.xlogy(y_hat, y_hat) - torch.xlogy(y_hat, safe_p_hat)).sum(1)
    gt_entropy = -torch.xlogy(y_hat, y_hat).sum(1)
    dice = 2 * safe_inter / torch.where(present, p_sum + counts, torch.full_like(p_sum, 2.0))
    log_dice = -torch.log(dice).masked_fill(~present, 0).sum(1)
    return {
        "df": df,
        "db": db,
        "cond_entropy": cond_entropy,
        "kl": kl,
        "gt_entropy": gt_entropy,
        "ce": ce,
        "log_dice": log_dice,
    }

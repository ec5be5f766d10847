"""Combined cross-entropy + label-marginal loss ("Ours(L1)", "Ours(DKL)"), fused.

Reference: Liu, Dolz, Galdran, Kobbi, Ben Ayed, "The hidden label-marginal biases of
segmentation losses", Eq. 5: ``L = CE + lambda * R(y_hat, p_hat)``; with ``use_sigmoid=True``
the binary form ``L = BCE + lambda * R`` on one foreground logit.
"""

from typing import List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmseg.models.losses.utils import get_class_weight
from mmseg.registry import MODELS
from torch import Tensor

from .labels import valid_mask
from .marginal import MarginalMixin
from .utils import SegLoss, check_binary, flatten_inputs, non_negative, pixel_weight


def binary_ce_sum(
    z: Tensor,
    lab: Tensor,
    valid: Tensor,
    *,
    pos_weight: Optional[Tensor] = None,
    pixel_weight: Optional[Tensor] = None,
) -> Tensor:
    """Sum over valid pixels of the (weighted) binary cross-entropy of one foreground logit.

    .. math::

        \\sum_{i \\in V} w_i \\big(c\\, y_i \\log(1 + e^{-z_i}) + (1 - y_i) \\log(1 + e^{z_i})\\big)

    i.e. ``-(c y log sigmoid(z) + (1 - y) log(1 - sigmoid(z)))``, the terms of
    ``F.binary_cross_entropy_with_logits(z, y, pos_weight=c)``.

    Args:
        z (Tensor): Foreground logits ``(B, 1, P)``.
        lab (Tensor): Labels ``(B, P)``, in {0, 1} where ``valid``.
        valid (Tensor): Boolean mask ``(B, P)`` of the valid pixels.
        pos_weight (Tensor | None): ``c``, a one-element weight of the foreground term
            (mmseg's ``class_weight`` in sigmoid mode). Default: None (1).
        pixel_weight (Tensor | None): ``w``, per-pixel weights ``(B, P)``. Default: None (1).

    Returns:
        Tensor: 0-dim sum.
    """
    zf = z[:, 0]
    y = torch.where(valid, lab, 0).to(zf.dtype)
    pos = F.softplus(-zf)  # -log sigmoid(z)
    if pos_weight is not None:
        pos = pos * pos_weight
    per_pixel = y * pos + (1 - y) * F.softplus(zf)  # softplus(z) = -log(1 - sigmoid(z))
    if pixel_weight is not None:
        per_pixel = per_pixel * pixel_weight.to(zf.dtype)
    return torch.where(valid, per_pixel, per_pixel.new_zeros(())).sum()


@MODELS.register_module()
class CEMarginalLoss(MarginalMixin, SegLoss):
    """Cross-entropy plus label-marginal penalty, computed in one fused pass.

    .. math::

        L = \\text{loss\\_weight} \\cdot \\Big(\\frac{\\sum_{i \\in V} w_i c_{y_i}
            (-\\log \\mathrm{softmax}(z_i)_{y_i})}{\\sum_{i \\in V} c_{y_i}}
            + \\lambda R(\\hat y, \\hat p)\\Big)

    The CE term is exactly mmseg's ``CrossEntropyLoss(avg_non_ignore=True)`` (class weights
    ``c``, per-pixel weights ``w`` from a pixel sampler, the same ``float32 eps`` in the
    denominator); ``R`` is :class:`~mmseg_marginal.losses.LabelMarginalLoss`'s penalty with the
    authors' scaling (L1 averaged over classes, KL summed; images averaged). "Ours(L1)":
    ``penalty='l1', marginal_weight=1.0``; "Ours(DKL)": ``penalty='kl', marginal_weight=0.1``
    (the paper's best values), ``temperature=10``.

    Both terms come out of a single custom autograd function
    (:mod:`mmseg_marginal.losses.fused`): one forward over the logits gives the CE sum, the
    tempered-softmax class sums and the argmax used for ``last_stats``; the backward writes
    ``w_i c_{y_i} (p_i - e_{y_i}) / N_ce + lambda tau s_i (G_b - <G_b, s_i>)`` directly. No
    one-hot label tensor is built and no logits-sized tensor is kept between forward and
    backward.

    Binary mode (``use_sigmoid=True``, the authors' binary setting): ``cls_score`` has one
    foreground channel, labels are in {0, 1} (and ``ignore_index``), and the loss is
    ``loss_weight * (BCE + lambda R)`` with the BCE of
    :func:`binary_ce_sum` averaged as mmseg's ``CrossEntropyLoss(use_sigmoid=True)`` does
    (over the valid pixels with ``avg_non_ignore=True``, over all pixels otherwise) and ``R``
    the binary penalty of ``LabelMarginalLoss(use_sigmoid=True)`` (``p_hat`` the mean of
    ``sigmoid(tau z)``). This path is plain torch with autograd, not the fused kernel.

    Args:
        penalty (str): ``'l1'`` or ``'kl'``. Default: ``'l1'``.
        marginal_weight (float): lambda, >= 0 (a negative lambda would reward predicted
            proportions that differ from the target ones). Default: 1.0.
        temperature (float): tau of the predicted proportions. Default: 10.0.
        class_reduction (str | None): ``'mean'`` / ``'sum'`` over classes for R; None =
            authors' default (``'mean'`` for L1, ``'sum'`` for KL).
        target (str): ``'image'`` (default), ``'batch'`` or ``'prior'``; see
            :class:`~mmseg_marginal.losses.LabelMarginalLoss`.
        prior (list[float] | None): K proportions for ``target='prior'``.
        class_weight (list[float] | str | None): CE class weights (or a file mmseg's
            ``get_class_weight`` reads). They weight the CE term only. In binary mode, as in
            mmseg, one entry: the weight of the foreground term (``pos_weight``).
        avg_non_ignore (bool): Average CE over valid pixels (sum of their class weights with
            ``class_weight``); False divides by the total pixel count. Default: True.
        loss_weight (float): Multiplier of the whole loss, >= 0. Default: 1.0.
        loss_name (str): Default: ``'loss_ce_marginal'``.
        compile (bool | str): Run the ``torch.compile``d kernels: ``'auto'`` (default) for
            float32 logits of at least 2**20 elements, ``True`` always, ``False`` never. A
            compilation failure falls back to eager with one logged warning.
        use_sigmoid (bool): Binary mode (one foreground logit). Default: False (softmax over
            K >= 2 channels).
        use_mask (bool): Must be False (mmseg's mask cross-entropy is not supported).
        reduction (str): Must be ``'mean'``.

    The last three and ``class_weight``, ``avg_non_ignore``, ``loss_weight``, ``loss_name`` are
    the keys of mmseg's ``CrossEntropyLoss``, so a ``dict(type='CEMarginalLoss', ...)`` merged
    into a stock head's loss dict builds with the keys the base config carries; a value that
    cannot be honoured raises ``ValueError`` naming it.

    Notes:
        A per-pixel ``weight`` (mmseg pixel sampler) multiplies the CE term only; the marginal
        term always uses all valid pixels. ``last_stats`` is as for ``LabelMarginalLoss``.
    """

    def __init__(
        self,
        penalty: str = "l1",
        marginal_weight: float = 1.0,
        temperature: float = 10.0,
        class_reduction: Optional[str] = None,
        target: str = "image",
        prior: Optional[Sequence[float]] = None,
        class_weight: Optional[Union[List[float], str]] = None,
        avg_non_ignore: bool = True,
        loss_weight: float = 1.0,
        loss_name: str = "loss_ce_marginal",
        compile: Union[bool, str] = "auto",
        use_sigmoid: bool = False,
        use_mask: bool = False,
        reduction: str = "mean",
    ) -> None:
        super().__init__(loss_weight=loss_weight, loss_name=loss_name)
        name = type(self).__name__
        self._init_marginal(
            penalty=penalty,
            temperature=temperature,
            class_reduction=class_reduction,
            target=target,
            prior=prior,
            compile=compile,
        )
        self._init_mmseg_keys(use_mask=use_mask, reduction=reduction, loss_weight=loss_weight)
        self.marginal_weight = non_negative(marginal_weight, "marginal_weight", name)
        self.class_weight = get_class_weight(class_weight)
        self.use_sigmoid = bool(use_sigmoid)
        if self.use_sigmoid and self.class_weight is not None:
            n = torch.as_tensor(self.class_weight).numel()
            if n != 1:
                raise ValueError(
                    f"{name}: with use_sigmoid=True, class_weight is the weight of the "
                    f"foreground term (mmseg's pos_weight) and must have 1 entry, got {n}: "
                    f"{class_weight!r}"
                )
        self.avg_non_ignore = avg_non_ignore

    def extra_repr(self) -> str:
        """Extra repr."""
        return (
            f"penalty={self.penalty!r}, marginal_weight={self.marginal_weight}, "
            f"temperature={self.temperature}, class_reduction={self.class_reduction!r}, "
            f"target={self.target!r}, use_sigmoid={self.use_sigmoid}, "
            f"avg_non_ignore={self.avg_non_ignore}, loss_weight={self.loss_weight}"
        )

    def compute_loss(
        self, logits: Tensor, label: Tensor, weight: Optional[Tensor], ignore_index: Optional[int]
    ) -> Tensor:
        """``CE + marginal_weight * R`` (before ``loss_weight``).

        ``logits`` has K >= 2 channels (K = 1 with ``use_sigmoid=True``); ``weight`` is an
        optional per-pixel CE weight, shape of ``label``. Shapes as in ``forward``.
        """
        name = type(self).__name__
        z, lab = flatten_inputs(logits, label, name)
        pix_w = pixel_weight(weight, lab, name)
        if check_binary(z, use_sigmoid=self.use_sigmoid, name=name):
            return self._loss_binary(z, lab, ignore_index=ignore_index, pix_w=pix_w)
        k = z.shape[1]
        cw = None
        if self.class_weight is not None:
            cw = torch.as_tensor(self.class_weight, dtype=z.dtype, device=z.device).flatten()
            if cw.numel() != k:
                raise ValueError(f"{name}: class_weight has {cw.numel()} entries for {k} classes")
        r, ce_sum, out = self._marginal_forward(
            z,
            lab,
            ignore_index=ignore_index,
            binary=False,
            with_ce=True,
            class_weight=cw,
            pixel_weight=pix_w,
        )
        if self.avg_non_ignore:
            denom = out["ce_denom"]
        else:
            denom = z.new_tensor(float(lab.numel()))
        ce = ce_sum / (denom + torch.finfo(torch.float32).eps)
        return ce + self.marginal_weight * r

    def _loss_binary(
        self, z: Tensor, lab: Tensor, *, ignore_index: Optional[int], pix_w: Optional[Tensor]
    ) -> Tensor:
        """``BCE + marginal_weight * R`` for one foreground channel."""
        # the binary marginal statistics check the labels (in {0, 1} or ignored) first
        r, _, out = self._marginal_forward(z, lab, ignore_index=ignore_index, binary=True)
        pos_weight = None
        if self.class_weight is not None:
            pos_weight = torch.as_tensor(self.class_weight, dtype=z.dtype, device=z.device)
            pos_weight = pos_weight.reshape(())
        valid = valid_mask(lab, ignore_index)
        ce_sum = binary_ce_sum(z, lab, valid, pos_weight=pos_weight, pixel_weight=pix_w)
        if self.avg_non_ignore:
            # mmseg: sum / (number of valid pixels + float32 eps)
            ce = ce_sum / (out["n_valid"].sum().to(z.dtype) + torch.finfo(torch.float32).eps)
        else:
            ce = ce_sum / lab.numel()  # mmseg: mean over all pixels, ignored ones counting 0
        return ce + self.marginal_weight * r

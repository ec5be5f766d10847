"""Combined cross-entropy + label-marginal loss ("Ours(L1)", "Ours(DKL)"), fused.

Reference: Liu, Dolz, Galdran, Kobbi, Ben Ayed, "The hidden label-marginal biases of
segmentation losses", Eq. 5: ``L = CE + lambda * R(y_hat, p_hat)``.
"""

from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmseg.models.losses.utils import get_class_weight
from mmseg.registry import MODELS
from torch import Tensor

from .marginal import MarginalMixin, check_binary
from .utils import flatten_inputs, pixel_weight


@MODELS.register_module()
class CEMarginalLoss(MarginalMixin, nn.Module):
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

    Args:
        penalty (str): ``'l1'`` or ``'kl'``. Default: ``'l1'``.
        marginal_weight (float): lambda. Default: 1.0.
        temperature (float): tau of the predicted proportions. Default: 10.0.
        class_reduction (str | None): ``'mean'`` / ``'sum'`` over classes for R; None =
            authors' default (``'mean'`` for L1, ``'sum'`` for KL).
        target (str): ``'image'`` (default), ``'batch'`` or ``'prior'``; see
            :class:`~mmseg_marginal.losses.LabelMarginalLoss`.
        prior (list[float] | None): K proportions for ``target='prior'``.
        class_weight (list[float] | str | None): CE class weights (or a file mmseg's
            ``get_class_weight`` reads). They weight the CE term only.
        avg_non_ignore (bool): Average CE over valid pixels (sum of their class weights with
            ``class_weight``); False divides by the total pixel count. Default: True.
        loss_weight (float): Multiplier of the whole loss. Default: 1.0.
        loss_name (str): Default: ``'loss_ce_marginal'``.
        compile (bool | str): Run the ``torch.compile``d kernels: ``'auto'`` (default) for
            float32 logits of at least 2**20 elements, ``True`` always, ``False`` never. A
            compilation failure falls back to eager with one logged warning.

    Notes:
        A per-pixel ``weight`` (mmseg pixel sampler) multiplies the CE term only; the marginal
        term always uses all valid pixels. ``last_stats`` is as for ``LabelMarginalLoss``.
        Logits must have K >= 2 channels (use ``CrossEntropyLoss(use_sigmoid=True)`` +
        ``LabelMarginalLoss(use_sigmoid=True)`` for binary segmentation).
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
    ) -> None:
        super().__init__()
        self._init_marginal(penalty, temperature, class_reduction, target, prior)
        if compile not in (True, False, "auto"):
            raise ValueError(f"compile must be True, False or 'auto', got {compile!r}")
        self.marginal_weight = float(marginal_weight)
        self.class_weight = get_class_weight(class_weight)
        self.avg_non_ignore = avg_non_ignore
        self.loss_weight = loss_weight
        self.compile = compile
        self._loss_name = loss_name

    def extra_repr(self) -> str:
        """Extra repr."""
        return (
            f"penalty={self.penalty!r}, marginal_weight={self.marginal_weight}, "
            f"temperature={self.temperature}, class_reduction={self.class_reduction!r}, "
            f"target={self.target!r}, avg_non_ignore={self.avg_non_ignore}, "
            f"loss_weight={self.loss_weight}"
        )

    def forward(
        self,
        cls_score: Tensor,
        label: Tensor,
        weight: Optional[Tensor] = None,
        ignore_index: Optional[int] = 255,
        **kwargs,
    ) -> Tensor:
        """Compute ``loss_weight * (CE + marginal_weight * R)``.

        Args:
            cls_score (Tensor): Logits ``(B, K, H, W)`` or ``(B, K, D, H, W)``, K >= 2.
            label (Tensor): Labels ``(B, H, W)`` or ``(B, D, H, W)``.
            weight (Tensor | None): Optional per-pixel CE weight, shape of ``label``.
            ignore_index (int | None): Label to ignore. Default: 255.

        Returns:
            Tensor: Scalar loss.
        """
        name = type(self).__name__
        z, lab = flatten_inputs(cls_score, label, name)
        check_binary(z, False, name)
        k = z.shape[1]
        cw = None
        if self.class_weight is not None:
            cw = torch.as_tensor(self.class_weight, dtype=z.dtype, device=z.device).flatten()
            if cw.numel() != k:
                raise ValueError(f"{name}: class_weight has {cw.numel()} entries for {k} classes")
        pix_w = pixel_weight(weight, lab, name)
        r, ce_sum, out = self._marginal_forward(
            z, lab, ignore_index, False, True, cw, pix_w, self.compile
        )
        if self.avg_non_ignore:
            denom = out["ce_denom"]
        else:
            denom = z.new_tensor(float(lab.numel()))
        ce = ce_sum / (denom + torch.finfo(torch.float32).eps)
        return self.loss_weight * (ce + self.marginal_weight * r)

    @property
    def loss_name(self) -> str:
        """Name of the loss item in mmseg's loss dict."""
        return self._loss_name

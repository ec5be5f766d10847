"""Combined cross-entropy + label-marginal loss ("Ours(L1)", "Ours(DKL)"), fused.

Reference: Liu, Dolz, Galdran, Kobbi, Ben Ayed, "The hidden label-marginal biases of
segmentation losses", Eq. 5: ``L = CE + lambda * R(y_hat, p_hat)``; with ``use_sigmoid=True``
the binary form ``L = BCE + lambda * R`` on one foreground logit.
"""

from typing import List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import SegLoss
from .inputs import CE_EPS, LossInputs, load_class_weight, non_negative
from .labels import check_labels
from .marginal import MarginalMixin


class CEMarginalLoss(MarginalMixin, SegLoss):
    """Cross-entropy plus label-marginal penalty, computed in one fused pass.

    .. math::

        L = \\text{loss\\_weight} \\cdot \\Big(\\frac{\\sum_{i \\in V} w_i c_{y_i}
            (-\\log \\mathrm{softmax}(z_i)_{y_i})}{\\sum_{i \\in V} c_{y_i} + \\epsilon}
            + \\lambda R(\\hat y, \\hat p)\\Big)

    The CE term is exactly mmseg's ``CrossEntropyLoss(avg_non_ignore=True)`` (class weights
    ``c``, per-pixel weights ``w`` from a pixel sampler, ``epsilon`` the float32 machine
    epsilon); ``R`` is :class:`~mmseg_marginal.losses.LabelMarginalLoss`'s penalty. "Ours(L1)":
    ``penalty='l1', marginal_weight=1.0``; "Ours(DKL)": ``penalty='kl', marginal_weight=0.1``
    (the paper's best values), ``temperature=10``. Both terms come out of one custom autograd
    function (:mod:`~mmseg_marginal.losses.fused`) with an analytic backward.

    Binary mode (``use_sigmoid=True``): one foreground channel, labels in {0, 1} (and
    ``ignore_index``); the loss is ``loss_weight * (BCE + lambda R)`` with the BCE of mmseg's
    ``CrossEntropyLoss(use_sigmoid=True)`` (averaged over the valid pixels with
    ``avg_non_ignore=True``, over all pixels otherwise; ``class_weight`` is the one weight of
    the foreground term) and ``R`` the binary penalty (``p_hat`` the mean of
    ``sigmoid(tau z)``).

    Args:
        penalty (str): ``'l1'`` or ``'kl'``. Default: ``'l1'``.
        marginal_weight (float): lambda >= 0. Default: 1.0.
        temperature (float): tau > 0 of the predicted proportions. Default: 10.0.
        class_reduction (str | None): ``'mean'`` / ``'sum'`` over classes for R; None =
            authors' default (``'mean'`` for L1, ``'sum'`` for KL).
        pooling (str): ``'image'`` (default) or ``'batch'``; see
            :class:`~mmseg_marginal.losses.LabelMarginalLoss`.
        prior (list[float] | None): Fixed target proportions of R.
        class_weight (list[float] | str | None): CE class weights, or a ``.npy``/``.json`` file
            of them (other formats through mmengine). They weight the CE term only.
        avg_non_ignore (bool): Average CE over the valid pixels (sum of their class weights
            with ``class_weight``); False divides by the total pixel count. Default: True.
        loss_weight (float): Multiplier of the whole loss, >= 0. Default: 1.0.
        loss_name (str): Default: ``'loss_ce_marginal'``.
        compile (bool | str): ``'auto'`` (default: compiled kernels for float32 logits of at
            least 2**20 elements), ``True`` or ``False``. A compilation failure falls back to
            eager with one logged warning.
        use_sigmoid (bool): Binary mode. Default: False.
        target (str | None): Deprecated spelling of ``pooling``/``prior``.
        use_mask (bool): Must be False.
        reduction (str): Must be ``'mean'``.

    Raises:
        ValueError: For any value that cannot be honoured, naming it.

    Notes:
        Per-call options (mmseg's contract): ``weight`` (per-pixel) multiplies the CE term
        only, the marginal term uses all valid pixels; ``avg_factor`` replaces the CE
        denominator; ``reduction_override='none'`` returns ``loss_weight`` times the per-pixel
        CE term ``w_i c_{y_i} (-log softmax(z_i)_{y_i})`` (0 at ignored pixels; R has no
        per-pixel value), which is what ``OHEMPixelSampler`` ranks pixels by. Statistics:
        :class:`~mmseg_marginal.losses.marginal.StatsReporter`.
    """

    per_pixel = True
    combined_regularizer = True

    def __init__(
        self,
        penalty: str = "l1",
        marginal_weight: float = 1.0,
        temperature: float = 10.0,
        class_reduction: Optional[str] = None,
        pooling: str = "image",
        prior: Optional[Sequence[float]] = None,
        class_weight: Optional[Union[List[float], str]] = None,
        avg_non_ignore: bool = True,
        loss_weight: float = 1.0,
        loss_name: str = "loss_ce_marginal",
        compile: Union[bool, str] = "auto",
        use_sigmoid: bool = False,
        target: Optional[str] = None,
        use_mask: bool = False,
        reduction: str = "mean",
    ) -> None:
        super().__init__(loss_weight=loss_weight, loss_name=loss_name, reduction=reduction)
        name = type(self).__name__
        self._init_marginal(
            penalty=penalty,
            temperature=temperature,
            class_reduction=class_reduction,
            pooling=pooling,
            prior=prior,
            target=target,
            compile=compile,
            use_mask=use_mask,
            use_sigmoid=use_sigmoid,
        )
        self.marginal_weight = non_negative(marginal_weight, "marginal_weight", name)
        self.class_weight = load_class_weight(class_weight, name)
        self._cw: Optional[Tensor] = None
        if self.class_weight is not None:
            self._cw = torch.tensor(self.class_weight, dtype=torch.float64)
            if self.use_sigmoid and self._cw.numel() != 1:
                raise ValueError(
                    f"{name}: with use_sigmoid=True, class_weight is the weight of the "
                    f"foreground term (mmseg's pos_weight) and must have 1 entry, got "
                    f"{self._cw.numel()}: {class_weight!r}"
                )
        self.avg_non_ignore = bool(avg_non_ignore)

    def extra_repr(self) -> str:
        """Extra repr."""
        return (
            f"penalty={self.penalty!r}, marginal_weight={self.marginal_weight}, "
            f"temperature={self.temperature}, class_reduction={self.class_reduction!r}, "
            f"pooling={self.pooling!r}, use_sigmoid={self.use_sigmoid}, "
            f"avg_non_ignore={self.avg_non_ignore}, loss_weight={self.loss_weight}"
        )

    def _class_weight(self, inp: LossInputs) -> Optional[Tensor]:
        """The CE class weights on the logits' device and dtype (one element in binary mode)."""
        if self._cw is None:
            return None
        k = inp.z.shape[1]
        if not inp.binary and self._cw.numel() != k:
            raise ValueError(
                f"{type(self).__name__}: class_weight has {self._cw.numel()} entries for {k} "
                "classes"
            )
        cw = self._cw.to(device=inp.z.device, dtype=inp.z.dtype)
        return cw.reshape(()) if inp.binary else cw

    def compute(self, inp: LossInputs, avg_factor: Optional[float]) -> Tensor:
        """``CE + marginal_weight * R`` before ``loss_weight``."""
        if avg_factor is not None:
            divisor = avg_factor + CE_EPS
        elif self.avg_non_ignore:
            divisor = None  # the sum of the class weights of the valid pixels, + CE_EPS
        elif inp.binary:
            divisor = float(inp.label.numel())  # mmseg's BCE: a plain mean over all pixels
        else:
            divisor = inp.label.numel() + CE_EPS
        return self._marginal_loss(
            inp,
            weight=self.marginal_weight,
            with_ce=True,
            class_weight=self._class_weight(inp),
            ce_divisor=divisor,
        )

    def pixel_values(self, inp: LossInputs) -> Tensor:
        """Per-pixel CE term ``(B, P)``: ``w_i c_{y_i} (-log softmax(z_i)_{y_i})`` (binary:
        the BCE terms), 0 at ignored pixels."""
        valid = check_labels(inp.label, inp.num_classes, inp.ignore_index)
        lab_c = torch.where(valid, inp.label, 0)
        cw = self._class_weight(inp)
        if inp.binary:
            ce = F.binary_cross_entropy_with_logits(
                inp.z[:, 0], lab_c.to(inp.z.dtype), reduction="none", pos_weight=cw
            )
        else:
            ce = F.cross_entropy(inp.z, lab_c, weight=cw, reduction="none")
        if inp.weight is not None:
            ce = ce * inp.weight
        return torch.where(valid, ce, ce.new_zeros(()))

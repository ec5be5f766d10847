"""Training-time logging of the label-marginal statistics of the marginal losses."""

from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS
from torch import nn

from ...losses import StatsReporter

if TYPE_CHECKING:
    from mmengine.runner import Runner

DATA_BATCH = Optional[Union[dict, tuple, list]]


def _head_prefix(module_path: str) -> str:
    """Name a loss module the way mmseg prefixes its losses in the log.

    ``decode_head.loss_decode`` -> ``decode``, ``auxiliary_head.loss_decode`` -> ``aux``,
    ``auxiliary_head.1.loss_decode`` -> ``aux_1``; other paths are kept as they are.
    """
    parts = module_path.split(".")
    if parts[0] == "decode_head":
        return "decode"
    if parts[0] == "auxiliary_head":
        if len(parts) > 1 and parts[1].isdigit():
            return f"aux_{parts[1]}"
        return "aux"
    return module_path


def find_stat_modules(model: nn.Module) -> List[Tuple[str, StatsReporter]]:
    """Return ``(module_path, module)`` of every submodule that reports statistics (an instance
    of :class:`~mmseg_marginal.losses.StatsReporter`).

    Model wrappers (DDP, FSDP, MMDistributedDataParallel) are unwrapped through ``.module``.

    Args:
        model (nn.Module): The runner's model.

    Returns:
        list[tuple[str, StatsReporter]]: The modules, in ``named_modules`` order.
    """
    while is_model_wrapper(model) or isinstance(model, nn.parallel.DistributedDataParallel):
        model = model.module
    return [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, StatsReporter)
    ]


def _loss_name(module: nn.Module, path: str) -> str:
    name = getattr(module, "loss_name", None)
    return name if isinstance(name, str) else path.rsplit(".", 1)[-1]


@HOOKS.register_module()
class MarginalStatsHook(Hook):
    """Log the marginal losses' training statistics as message-hub scalars.

    Before training the hook switches on the statistics of every marginal loss of the model
    (``LabelMarginalLoss``, ``CEMarginalLoss``: :meth:`StatsReporter.enable_stats
    <mmseg_marginal.losses.StatsReporter.enable_stats>`); each training forward then keeps a
    :class:`~mmseg_marginal.losses.LossStats` of detached scalars computed in the same pass over
    the logits: ``marginal``, the regularizer :math:`\\mathcal{R}(\\hat{y}, \\hat{p})` before
    weights, and ``prop_mae``, the mean over images and classes of
    :math:`|\\hat{y}_{bk} - q_{bk}|`, with :math:`q` the proportions of the argmax prediction
    over the valid pixels. Without the hook they are not computed.

    After every ``interval``-th training iteration the hook writes, for each such loss of the
    model (found through ``named_modules``, DDP unwrapped),

    - ``train/<head>.<loss_name>_prop_mae``, always;
    - ``train/<head>.<loss_name>_marginal``, when the loss has a separate regularizer inside a
      combined loss (``CEMarginalLoss``: the regularizer is otherwise hidden in the sum); the
      standalone ``LabelMarginalLoss`` already appears as ``<head>.<loss_name>`` in the log,

    with ``<head>`` as mmseg prefixes losses (``decode``, ``aux``, ``aux_<i>``). At each logging
    interval the ``LoggerHook`` (which runs after this hook) writes their mean over the
    ``LogProcessor``'s ``window_size`` last values (default 10; their names contain ``loss``,
    which ``LogProcessor`` averages) to the text log and to the configured visualizer backends
    (JSON scalars, TensorBoard, W&B). Usage::

        custom_hooks = [dict(type='MarginalStatsHook')]

    Args:
        interval (int): Write the scalars every ``interval`` training iterations. Default: 1
            (every iteration, so that the logger's window mean is over all its iterations).
        log_marginal (bool, optional): Force (True) or prevent (False) logging of the
            regularizer's value; None logs it for combined losses only
            (``combined_regularizer``). Default: None.
    """

    priority = "NORMAL"  # before LoggerHook (BELOW_NORMAL) in after_train_iter

    def __init__(self, interval: int = 1, log_marginal: Optional[bool] = None) -> None:
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f"interval must be a positive int, got {interval!r}")
        self.interval = interval
        self.log_marginal = log_marginal
        self._modules: Optional[List[Tuple[str, StatsReporter]]] = None

    def before_train(self, runner: "Runner") -> None:
        """Find the modules that report statistics and switch their statistics on."""
        self._modules = find_stat_modules(runner.model)
        for _, module in self._modules:
            module.enable_stats(True)
        if not self._modules:
            runner.logger.warning(
                "MarginalStatsHook: the model has no loss that reports statistics "
                "(LabelMarginalLoss, CEMarginalLoss); nothing will be logged"
            )

    def collect(self, model: nn.Module) -> Dict[str, float]:
        """Return the scalars to log for ``model``, keyed without the ``train/`` prefix.

        Args:
            model (nn.Module): The (possibly wrapped) model.

        Returns:
            dict[str, float]: e.g. ``{'decode.loss_ce_marginal_prop_mae': 0.12,
            'decode.loss_ce_marginal_marginal': 0.08}``.
        """
        modules = self._modules if self._modules is not None else find_stat_modules(model)
        scalars: Dict[str, float] = {}
        for path, module in modules:
            stats = module.last_stats
            if stats is None:
                continue
            key = f"{_head_prefix(path)}.{_loss_name(module, path)}"
            log_marginal = self.log_marginal
            if log_marginal is None:
                log_marginal = module.combined_regularizer
            for stat, value in stats._asdict().items():
                if stat == "marginal" and not log_marginal:
                    continue
                if isinstance(value, torch.Tensor):
                    value = value.detach().float().mean().item()
                scalars[f"{key}_{stat}"] = float(value)
        return scalars

    def after_train_iter(
        self,
        runner: "Runner",
        batch_idx: int,
        data_batch: DATA_BATCH = None,
        outputs: Optional[Sequence] = None,
    ) -> None:
        """Write the scalars of this iteration to ``runner.message_hub``."""
        if not self.every_n_train_iters(runner, self.interval):
            return
        for key, value in self.collect(runner.model).items():
            runner.message_hub.update_scalar(f"train/{key}", value)

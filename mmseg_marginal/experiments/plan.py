"""Planning a loss comparison: which runs, with which loss, in which order.

A comparison trains one base config several times, each time with another
``model.decode_head.loss_decode`` (and the head outputs the loss needs, :data:`HEAD_OUTPUT_KEYS`)
and seed. The losses are not restated here: they are read
from the configs. The configs of one setting follow mmseg's naming, ``<stem>_<loss>.py`` in one
folder (``configs/camvid/fpn_r18-half_1xb8-8k_camvid-180x240_ce-l1.py`` is the ``ce-l1`` loss
of the stem ``fpn_r18-half_1xb8-8k_camvid-180x240``), so a loss name given with a base config
is the sibling config of that name; ``name=path/to/config.py`` takes the loss of any config.
"""

from __future__ import annotations

import copy
import glob
import os.path as osp
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

#: Keys of ``model.decode_head`` that a loss config sets with its loss: how many logits the
#: head has and how they become a prediction (a sigmoid loss needs one logit and a threshold).
HEAD_OUTPUT_KEYS = ("out_channels", "threshold")

#: Loss types whose weight is the "λ" of the paper: CEMarginalLoss's ``marginal_weight``;
#: for a list ``[CE, term]`` the ``loss_weight`` of the term added to CE.
CE_TYPES = ("CrossEntropyLoss",)


@dataclass
class RunSpec:
    """One training run of a comparison.

    Attributes:
        loss (str): loss name (sibling config name, or the name given as ``name=config.py``).
        label (str): human-readable loss label for the tables.
        loss_cfg (dict | list): the ``loss_decode`` of the run.
        seed (int): random seed of the run (``randomness.seed``).
        iters (int): training iterations.
        marginal_weight (float, optional): λ of a sweep run whose λ differs from the loss
            config's own (None: the config's λ; such a run is the same run as in the main
            comparison and shares its result).
        head (dict): the output settings of the decode head that the loss goes with
            (:data:`HEAD_OUTPUT_KEYS` present in the loss config, e.g. ``out_channels=1`` and
            ``threshold`` of a sigmoid head, ``out_channels=2`` of a softmax head).
    """

    loss: str
    label: str
    loss_cfg: Any
    seed: int
    iters: int
    marginal_weight: Optional[float] = None
    head: Dict[str, Any] = field(default_factory=dict)

    @property
    def group(self) -> str:
        """Name shared by the seeds of one loss setting."""
        if self.marginal_weight is None:
            return self.loss
        return f"{self.loss}_lam{self.marginal_weight:g}"

    @property
    def name(self) -> str:
        """Run name: file stem of the result JSON and the work dir name."""
        return f"{self.group}_seed{self.seed}_iters{self.iters}"

    @property
    def weight(self) -> Optional[float]:
        """The run's λ (:func:`term_weight` of its loss); None for a loss without one."""
        return term_weight(self.loss_cfg)


def loss_of_config(path: str) -> Any:
    """The ``model.decode_head.loss_decode`` of a config file, as plain dict(s).

    Raises:
        FileNotFoundError: the config does not exist.
    """
    return _loss_and_head(path)[0]


def _loss_and_head(path: str) -> Tuple[Any, Dict[str, Any]]:
    from mmengine.config import Config

    if not osp.isfile(path):
        raise FileNotFoundError(f"loss config '{path}' does not exist")
    head = Config.fromfile(path).model.decode_head
    loss = head.loss_decode
    outputs = {k: head[k] for k in HEAD_OUTPUT_KEYS if k in head}
    if isinstance(loss, (list, tuple)):
        return [_plain(item) for item in loss], outputs
    return _plain(loss), outputs


def _plain(item: Any) -> Dict[str, Any]:
    return item.to_dict() if hasattr(item, "to_dict") else dict(item)


def sibling_loss_configs(config: str) -> Dict[str, str]:
    """The loss configs beside ``config``: ``{loss name: path}`` for ``<stem>_<loss>.py``.

    The stem is the file name of ``config`` up to its last ``_`` (mmseg's naming puts the
    loss last).
    """
    folder, name = osp.split(config)
    stem = osp.splitext(name)[0].rsplit("_", 1)[0]
    found = {}
    for path in sorted(glob.glob(osp.join(folder or ".", f"{glob.escape(stem)}_*.py"))):
        loss = osp.splitext(osp.basename(path))[0][len(stem) + 1 :]
        if "_" not in loss:
            found[loss] = path
    return found


def term_weight(loss_cfg: Any) -> Optional[float]:
    """λ of a loss: ``marginal_weight`` of a CEMarginalLoss, or the ``loss_weight`` of the
    single term that a two-term list adds to CE (``[CE, LabelMarginalLoss]``,
    ``[CE, Dice]``...). None for a loss without such a term (CE, Dice alone...).
    """
    items = loss_cfg if isinstance(loss_cfg, (list, tuple)) else [loss_cfg]
    if len(items) == 1 and items[0].get("type") == "CEMarginalLoss":
        return float(items[0].get("marginal_weight", 1.0))
    if len(items) == 2 and items[0].get("type") in CE_TYPES:
        if items[1].get("type") not in CE_TYPES:
            return float(items[1].get("loss_weight", 1.0))
    return None


def with_term_weight(loss_cfg: Any, weight: float) -> Any:
    """Copy of ``loss_cfg`` with λ (see :func:`term_weight`) set to ``weight``.

    Raises:
        ValueError: the loss has no λ.
    """
    if term_weight(loss_cfg) is None:
        raise ValueError(f"the loss {loss_cfg} has no weighted term to sweep")
    new = copy.deepcopy(loss_cfg)
    if isinstance(new, dict):
        new["marginal_weight"] = float(weight)
    elif new[0].get("type") == "CEMarginalLoss":
        new[0]["marginal_weight"] = float(weight)
    else:
        new[1]["loss_weight"] = float(weight)
    return new


_SHORT = {"CrossEntropyLoss": "CE", "SoftmaxFocalLoss": "Focal", "SigmoidFocalLoss": "Focal"}


def describe_loss(loss_cfg: Any) -> str:
    """A short label of a ``loss_decode`` for tables, e.g. ``CE + L1 (λ=1, τ=10)``."""
    items = loss_cfg if isinstance(loss_cfg, (list, tuple)) else [loss_cfg]
    parts = []
    for item in items:
        kind = item.get("type", "?")
        weight = float(item.get("loss_weight", 1.0))
        sigmoid = bool(item.get("use_sigmoid", False))
        if kind == "CEMarginalLoss":
            text = (
                f"{'BCE' if sigmoid else 'CE'} + {str(item.get('penalty', 'l1')).upper()} "
                f"(λ={float(item.get('marginal_weight', 1.0)):g}, "
                f"τ={float(item.get('temperature', 10.0)):g})"
            )
        elif kind == "LabelMarginalLoss":
            text = (
                f"{str(item.get('penalty', 'l1')).upper()} "
                f"(τ={float(item.get('temperature', 10.0)):g})"
            )
        elif kind == "ClasswiseDiceLoss":
            text = "-log Dice" if item.get("log", False) else "(1-Dice)"
        elif kind == "CrossEntropyLoss":
            text = "BCE" if sigmoid else "CE"
        elif kind in _SHORT:
            text = f"{_SHORT[kind]} (γ={float(item.get('gamma', 2.0)):g})"
        else:
            text = kind.replace("Loss", "") or kind
        if weight != 1.0:
            text = f"{weight:g}·({text})" if text.startswith("-") else f"{weight:g}·{text}"
        parts.append(text)
    return " + ".join(parts)


def plan_runs(
    losses: Sequence[str],
    seeds: Sequence[int],
    iters: int,
    sweep_lambda: Optional[Sequence[float]] = None,
    *,
    config: Optional[str] = None,
) -> List[RunSpec]:
    """Expand losses x (lambdas) x seeds into run specs, in the order they will run.

    Args:
        losses: loss names of the sibling configs of ``config`` (see
            :func:`sibling_loss_configs`), or ``name=path/to/config.py`` (the
            ``loss_decode`` of that config).
        seeds: random seeds; every loss setting is trained once per seed.
        iters: training iterations of every run.
        sweep_lambda: lambdas; every loss with a λ (:func:`term_weight`) is run once per
            lambda, the other losses once (as references). A lambda equal to the loss
            config's own is the run of the main comparison (same name, same result).
        config: base config whose siblings hold the named losses.

    Returns:
        list[RunSpec]: seeds outermost, so that a comparison finished in parts has every
        loss at seed 0 before any at seed 1.

    Raises:
        ValueError: unknown loss, no loss or seed, duplicate names, ``iters < 1``, or a
            sweep without any loss that has a λ.
        FileNotFoundError: a ``name=config.py`` that does not exist.
    """
    if not losses:
        raise ValueError("no loss given (--losses)")
    if not seeds:
        raise ValueError("no seed given (--seeds)")
    if iters < 1:
        raise ValueError(f"--iters must be >= 1, got {iters}")
    if any(s < 0 for s in seeds):
        raise ValueError(f"seeds must be >= 0, got {list(seeds)}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"duplicate seeds {list(seeds)}")
    siblings = sibling_loss_configs(config) if config else {}
    settings = []
    for entry in losses:
        if "=" in entry:
            name, path = entry.split("=", 1)
        elif entry in siblings:
            name, path = entry, siblings[entry]
        else:
            where = f"beside {config}" if config else "(no --config given)"
            raise ValueError(
                f"unknown loss {entry!r}: no config <stem>_{entry}.py {where}; use one of "
                f"{sorted(siblings)} or name=config.py"
            )
        cfg, head = _loss_and_head(path)
        settings.append((name, describe_loss(cfg), cfg, head))
    names = [s[0] for s in settings]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate loss names {names}")
    expanded = []
    for name, label, cfg, head in settings:
        own = term_weight(cfg)
        if not sweep_lambda or own is None:
            expanded.append((name, label, cfg, None, head))
            continue
        for lam in sweep_lambda:
            if float(lam) == own:
                expanded.append((name, label, cfg, None, head))
            else:
                new = with_term_weight(cfg, lam)
                expanded.append((name, describe_loss(new), new, float(lam), head))
    if sweep_lambda and all(term_weight(e[2]) is None for e in expanded):
        raise ValueError(
            "--sweep-lambda needs a loss with a λ (CEMarginalLoss, or CE plus one weighted "
            f"term) in --losses, got {names}"
        )
    return [
        RunSpec(name, label, copy.deepcopy(cfg), int(seed), int(iters), lam, dict(head))
        for seed in seeds
        for name, label, cfg, lam, head in expanded
    ]

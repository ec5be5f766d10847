"""One run of a comparison: its config, its training, its evaluation and its result JSON.

:func:`train_and_evaluate` trains the run through mmengine's ``Runner.train()`` and evaluates
it through ``Runner.test()`` (mmengine's ``TestLoop``) with the config's test evaluators, made
to return the per-class and per-image values the comparison tabulates
(:func:`comparison_evaluators`).
The comparison (:mod:`.comparison`) runs it in a subprocess per run
(``python -m mmseg_marginal.experiments.worker JOB RESULT``).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import os
import os.path as osp
import platform
import subprocess
import time
from dataclasses import asdict
from typing import Any, Dict, List, Optional

from .plan import RunSpec


def hardware() -> Dict[str, Any]:
    """Processor, core count, torch threads and accelerator of this machine.

    ``cpu`` is the ``model name`` of ``/proc/cpuinfo`` (the CPU model as the operating system
    reports it; on a virtual machine possibly shortened, e.g. ``AMD EPYC``), else
    ``platform.processor()`` or ``platform.machine()``.
    """
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = dict(
        cpu=cpu,
        cpu_count=os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        platform=platform.platform(),
        torch=torch.__version__,
        device="cpu",
    )
    if torch.cuda.is_available():
        info["device"] = torch.cuda.get_device_name(0)
    return info


def code_version(path: Optional[str] = None) -> Dict[str, Any]:
    """The git commit of the checkout that holds ``path`` (default: this package).

    Returns:
        dict: ``commit`` (40 hex digits, or None outside a git checkout or without git) and
        ``uncommitted_changes`` (True when tracked files differ from that commit; None when
        the commit is unknown).
    """
    where = osp.dirname(osp.abspath(path or __file__))

    def git(*args: str) -> Optional[str]:
        try:
            out = subprocess.run(
                ["git", "-C", where, *args], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout if out.returncode == 0 else None

    commit = (git("rev-parse", "HEAD") or "").strip() or None
    if commit is None:
        return dict(commit=None, uncommitted_changes=None)
    status = git("status", "--porcelain", "--untracked-files=no")
    return dict(commit=commit, uncommitted_changes=None if status is None else bool(status.strip()))


def load_config(
    config: str,
    *,
    cfg_options: Optional[Dict[str, Any]] = None,
    data_root: Optional[str] = None,
) -> Any:
    """``config`` with ``cfg_options`` merged and ``data_root`` set on every dataloader.

    Raises:
        FileNotFoundError: the config does not exist.
    """
    from mmengine.config import Config

    if not osp.isfile(config):
        raise FileNotFoundError(f"config '{config}' does not exist")
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if data_root is not None:
        for key in ("train_dataloader", "val_dataloader", "test_dataloader"):
            loader = cfg.get(key, None)
            if loader is not None:
                _set_data_root(loader.get("dataset", None), data_root)
    return cfg


def _set_data_root(dataset: Any, data_root: str) -> None:
    """Set ``data_root`` on the leaf datasets, through Repeat/Concat-style wrappers."""
    if not isinstance(dataset, dict):
        return
    if "datasets" in dataset:
        for child in dataset["datasets"]:
            _set_data_root(child, data_root)
    elif "dataset" in dataset:
        _set_data_root(dataset["dataset"], data_root)
    else:
        dataset["data_root"] = data_root


def comparison_evaluators(cfg: Any) -> List[Dict[str, Any]]:
    """The config's test evaluators, made to report what a comparison tabulates.

    ``IoUMetric`` becomes :class:`~mmseg_marginal.evaluation.ClasswiseIoUMetric` (same
    arguments, per-class values returned), ``ProportionMetric`` gets ``classwise=True``, and a
    ``ProportionMetric`` with the head's ``ignore_index`` is added when the config has none.
    Other metrics (e.g. ``BoundaryMetric``) are kept as they are.
    """
    evaluators = cfg.get("test_evaluator", None) or []
    if isinstance(evaluators, dict):
        evaluators = [evaluators]
    evaluators = [dict(copy.deepcopy(e)) for e in evaluators]
    for item in evaluators:
        if item.get("type") == "IoUMetric":
            item["type"] = "ClasswiseIoUMetric"
        elif item.get("type") == "ProportionMetric":
            item["classwise"] = True
    if not any(e.get("type") == "ProportionMetric" for e in evaluators):
        ignore_index = cfg.model.decode_head.get("ignore_index", 255)
        evaluators.append(dict(type="ProportionMetric", ignore_index=ignore_index))
    return evaluators


def build_run_config(
    config: str,
    spec: RunSpec,
    work_dir: str,
    *,
    cfg_options: Optional[Dict[str, Any]] = None,
    data_root: Optional[str] = None,
    ckpt_interval: Optional[int] = None,
) -> Any:
    """The base config with the run's loss, schedule length, seed and work dir.

    Validation during training is switched off (the run is tested once at the end, with
    :func:`comparison_evaluators`); iteration-based parameter schedulers that ended at the base
    config's last iteration (or after ``iters``) end at ``iters``, those that would begin after
    ``iters`` are dropped.

    Returns:
        mmengine.config.Config
    """
    cfg = load_config(config, cfg_options=cfg_options, data_root=data_root)
    cfg.model.decode_head.loss_decode = copy.deepcopy(spec.loss_cfg)
    cfg.model.decode_head.update(copy.deepcopy(spec.head))
    old_iters = cfg.train_cfg.get("max_iters", spec.iters)
    cfg.train_cfg = dict(
        type="FastResumeIterBasedTrainLoop", max_iters=spec.iters, val_interval=spec.iters
    )
    cfg.val_cfg = None
    cfg.val_dataloader = None
    cfg.val_evaluator = None
    cfg.test_evaluator = comparison_evaluators(cfg)
    schedulers = cfg.get("param_scheduler", None) or []
    if isinstance(schedulers, dict):
        schedulers = [schedulers]
    kept = []
    for sched in schedulers:
        if not sched.get("by_epoch", True):
            if sched.get("begin", 0) >= spec.iters:
                continue  # starts after the (shorter) schedule ends
            end = sched.get("end", math.inf)
            if end >= old_iters or end > spec.iters:
                sched["end"] = spec.iters
        kept.append(sched)
    cfg.param_scheduler = kept
    interval = ckpt_interval or max(1, min(spec.iters, max(50, spec.iters // 20)))
    cfg.default_hooks.checkpoint = dict(
        type="CheckpointHook", by_epoch=False, interval=interval, max_keep_ckpts=1, save_last=True
    )
    cfg.default_hooks.pop("visualization", None)
    cfg.randomness = dict(seed=spec.seed)
    cfg.work_dir = work_dir
    cfg.resume = False
    cfg.load_from = None
    return cfg


def last_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint named in ``<work_dir>/last_checkpoint`` if it exists, else None."""
    marker = osp.join(work_dir, "last_checkpoint")
    if not osp.isfile(marker):
        return None
    with open(marker) as f:
        path = f.read().strip()
    return path if path and osp.isfile(path) else None


def _display_path(path: str) -> str:
    """``path`` relative to the working directory when it lies inside it."""
    rel = osp.relpath(osp.abspath(path))
    return path if rel.startswith("..") else rel


def _percent_or_none(value: Any) -> Optional[float]:
    return None if value is None or math.isnan(value) else round(float(value), 4)


def metrics_to_result(
    metrics: Dict[str, Any], classes: List[str], per_image: Optional[List[dict]] = None
) -> Dict[str, Any]:
    """The result-JSON fields of ``Runner.test()``'s metrics (:func:`comparison_evaluators`).

    Returns:
        dict: ``classes``, ``aAcc``, ``mIoU`` (mean over the classes with an IoU, as in
        mmseg), ``mPropMAE``, ``per_class`` = {``IoU``, ``Acc``, ``RegProp``, ``PredProp``,
        ``PropMAE``: {class: percent or None}} (keys present when the metric ran) and, for a
        binary ``BoundaryMetric``, ``binary`` (its values) and ``per_image`` (its records).
    """
    per_class: Dict[str, Dict[str, Optional[float]]] = {}
    for key in ("IoU", "Acc", "RegProp", "PredProp", "PropMAE"):
        if f"{key}.{classes[0]}" in metrics:
            per_class[key] = {c: _percent_or_none(metrics[f"{key}.{c}"]) for c in classes}
    ious = [v for v in per_class.get("IoU", {}).values() if v is not None]
    out: Dict[str, Any] = dict(
        aAcc=float(metrics["aAcc"]) if "aAcc" in metrics else None,
        mIoU=round(sum(ious) / len(ious), 4) if ious else None,
        mPropMAE=metrics.get("mPropMAE"),
        per_class=per_class,
    )
    if "DSC" in metrics:
        keys = ("DSC", "DSC_std", "HD95", "HD95_std", "GTShare", "PredShare")
        out["binary"] = {k: metrics[k] for k in keys}
        out["binary"].update({k: metrics[k] for k in metrics if k.startswith("n_")})
        out["per_image"] = per_image or []
    return out


def train_and_evaluate(job: Dict[str, Any]) -> Dict[str, Any]:
    """Train one run and test it; return its result dict (see :func:`write_result`).

    Args:
        job (dict): ``spec`` (a :class:`RunSpec` as dict), ``config``, ``work_dir`` and
            optionally ``cfg_options``, ``data_root``, ``ckpt_interval``, ``resume``,
            ``small_classes``, ``progress_file`` (progress written there for the parent's
            bar, :class:`~mmseg_marginal.experiments.progress.ProgressFileHook`).
    """
    from mmengine.runner import Runner

    import mmseg_marginal  # noqa: F401  (registers losses, metrics, datasets)

    spec = RunSpec(**job["spec"])
    cfg = build_run_config(
        job["config"],
        spec,
        job["work_dir"],
        cfg_options=job.get("cfg_options"),
        data_root=job.get("data_root"),
        ckpt_interval=job.get("ckpt_interval"),
    )
    resumed = bool(job.get("resume")) and last_checkpoint(job["work_dir"]) is not None
    cfg.resume = resumed
    start = time.time()
    runner = Runner.from_cfg(cfg)
    if job.get("progress_file"):
        from .progress import ProgressFileHook

        runner.register_hook(ProgressFileHook(job["progress_file"]))
    runner.train()
    train_time = time.time() - start
    start = time.time()
    metrics = runner.test()
    eval_time = time.time() - start
    dataset = runner.test_dataloader.dataset
    classes = list(dataset.metainfo["classes"])
    per_image = None
    for metric in runner.test_loop.evaluator.metrics:
        if hasattr(metric, "per_image"):
            per_image = metric.per_image
    small = job.get("small_classes") or cfg.get("small_classes", None)
    return dict(
        run=spec.name,
        spec=asdict(spec),
        config=_display_path(job["config"]),
        cfg_options=job.get("cfg_options"),
        data_root=cfg.test_dataloader.dataset.get("data_root"),
        dataset=cfg.test_dataloader.dataset.type,
        crop_size=list(cfg.get("crop_size", [])) or None,
        train_batch_size=cfg.train_dataloader.batch_size,
        iters=spec.iters,
        seed=spec.seed,
        resumed=resumed,
        train_time_s=round(train_time, 1),
        eval_time_s=round(eval_time, 1),
        hardware=hardware(),
        **code_version(),
        finished_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        small_classes=list(small) if small else None,
        classes=classes,
        num_images=len(dataset),
        **metrics_to_result(metrics, classes, per_image),
    )


def write_result(result: Dict[str, Any], path: str) -> None:
    """Write a result dict as JSON, atomically (a partial file never replaces a result)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=1, ensure_ascii=False)
    os.replace(tmp, path)

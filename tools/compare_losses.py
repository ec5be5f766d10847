"""Train a list of losses on one dataset, evaluate them, and tabulate and plot the results.

Every run (one loss, one seed, optionally one lambda) trains the same base config with only
``model.decode_head.loss_decode`` replaced, in its own subprocess (a failing run cannot take
the others down), one at a time. After training the subprocess evaluates the model on the
config's test split with mmseg's ``IoUMetric`` and mmseg_marginal's ``ProportionMetric`` and
writes one small JSON per run (per-class IoU, GT and predicted proportions and their mean
absolute error, seed, iterations, wall time, hardware). Finished runs are skipped when the tool
is started again, an interrupted run continues from the last checkpoint of its work dir with
``--resume``, and a failing run never overwrites an earlier result, so a comparison longer
than one working session can be completed in parts. At the end the tool writes
``summary.md`` (tables) and ``per_class.png`` (plot) next to the JSONs.

Example (CamVid, 4 losses, 3 seeds)::

    python tools/compare_losses.py \\
        --config configs/camvid/fpn_r18-half_1xb8-8k_camvid-180x240_ce.py \\
        --losses ce ce-l1 ce-kl logdice-ce --seeds 0 1 2 --iters 8000 --out results/camvid --resume

Lambda sweep of a marginal loss (CE is run once as the reference)::

    python tools/compare_losses.py --config ... --losses ce ce-l1 --sweep-lambda 0.1 0.3 1 3 ...
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import math
import os
import os.path as osp
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Sequence

_CE = dict(type="CrossEntropyLoss", use_sigmoid=False, avg_non_ignore=True, loss_weight=1.0)

_RELEASED_DICE = dict(reduction="batch", absent="zero", smooth=0.0, eps=1e-7)

#: Loss presets: name -> (label, ``loss_decode``). Plain names are the paper text's
#: definitions (per-image Dice over present classes, softmax focal, DiceBias summed over present
#: classes; the CamVid comparison used them); ``*-released`` names are the variants of the
#: authors' released code that the ``configs/fpn_marginal`` Table 4 configs use.
LOSS_PRESETS: Dict[str, tuple] = {
    "ce": ("CE", _CE),
    "ce-l1": (
        "CE + L1 (λ=1, τ=10)",
        dict(
            type="CEMarginalLoss",
            penalty="l1",
            marginal_weight=1.0,
            temperature=10.0,
            avg_non_ignore=True,
            loss_weight=1.0,
        ),
    ),
    "ce-kl": (
        "CE + KL (λ=0.1, τ=10)",
        dict(
            type="CEMarginalLoss",
            penalty="kl",
            marginal_weight=0.1,
            temperature=10.0,
            avg_non_ignore=True,
            loss_weight=1.0,
        ),
    ),
    "logdice-ce": (
        "LogDiceCE (CE + 0.1·(-log Dice))",
        [
            dict(_CE, loss_name="loss_ce"),
            dict(type="ClasswiseDiceLoss", log=True, loss_weight=0.1),
        ],
    ),
    "dice-ce": (
        "DiceCE (CE + 0.1·(1-Dice))",
        [
            dict(_CE, loss_name="loss_ce"),
            dict(type="ClasswiseDiceLoss", log=False, loss_weight=0.1),
        ],
    ),
    "dice": ("Dice", dict(type="ClasswiseDiceLoss", log=False, loss_weight=1.0)),
    "logdice": ("LogDice", dict(type="ClasswiseDiceLoss", log=True, loss_weight=1.0)),
    "gdice": ("GDice", dict(type="GeneralizedDiceLoss", loss_weight=1.0)),
    "focal": ("Focal (γ=2)", dict(type="SoftmaxFocalLoss", gamma=2.0, loss_weight=1.0)),
    "dicebias-ce": (
        "CE + 0.1·DiceBias",
        [dict(_CE, loss_name="loss_ce"), dict(type="DiceBiasLoss", loss_weight=0.1)],
    ),
    "focal-released": (
        "Focal (sigmoid one-vs-rest, γ=2, released code)",
        dict(type="SigmoidFocalLoss", gamma=2.0, loss_weight=1.0),
    ),
    "dice-released": (
        "Dice (batch-pooled, released code)",
        dict(type="ClasswiseDiceLoss", log=False, loss_weight=1.0, **_RELEASED_DICE),
    ),
    "logdice-released": (
        "LogDice (batch-pooled, released code)",
        dict(type="ClasswiseDiceLoss", log=True, loss_weight=1.0, **_RELEASED_DICE),
    ),
    "dice-ce-released": (
        "DiceCE (CE + 0.1·(1-Dice), batch-pooled Dice, released code)",
        [
            dict(_CE, loss_name="loss_ce"),
            dict(type="ClasswiseDiceLoss", log=False, loss_weight=0.1, **_RELEASED_DICE),
        ],
    ),
    "logdice-ce-released": (
        "LogDiceCE (CE + 0.1·(-log Dice), batch-pooled Dice, released code)",
        [
            dict(_CE, loss_name="loss_ce"),
            dict(type="ClasswiseDiceLoss", log=True, loss_weight=0.1, **_RELEASED_DICE),
        ],
    ),
    "gdice-released": (
        "GDice (batch-pooled)",
        dict(type="GeneralizedDiceLoss", reduction="batch", loss_weight=1.0),
    ),
    "dicebias-ce-released": (
        "CE + 0.1·DiceBias (mean over classes, released code)",
        [
            dict(_CE, loss_name="loss_ce"),
            dict(type="DiceBiasLoss", class_reduction="mean", loss_weight=0.1),
        ],
    ),
}


@dataclass
class RunSpec:
    """One training run of a comparison.

    Attributes:
        loss (str): loss name (preset key, or the name given as ``name=config.py``).
        label (str): human-readable loss label for the tables.
        loss_cfg (dict | list): the ``loss_decode`` of the run.
        seed (int): random seed of the run (``randomness.seed``).
        iters (int): training iterations.
        marginal_weight (float, optional): lambda of a sweep run (None: the loss's own).
    """

    loss: str
    label: str
    loss_cfg: Any
    seed: int
    iters: int
    marginal_weight: Optional[float] = None

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


def _loss_from_config(path: str) -> Any:
    from mmengine.config import Config

    if not osp.isfile(path):
        raise FileNotFoundError(f"loss config '{path}' does not exist")
    cfg = Config.fromfile(path)
    try:
        return cfg.model.decode_head.loss_decode.to_dict()
    except AttributeError:
        loss = cfg.model.decode_head.loss_decode
        return [dict(item) for item in loss]


def _with_marginal_weight(loss_cfg: Any, weight: float) -> Any:
    """Copy of ``loss_cfg`` whose marginal-loss entries get ``weight``; None if it has none."""
    items = copy.deepcopy(loss_cfg if isinstance(loss_cfg, list) else [loss_cfg])
    found = False
    for item in items:
        if item.get("type") == "CEMarginalLoss":
            item["marginal_weight"] = weight
            found = True
        elif item.get("type") == "LabelMarginalLoss":
            item["loss_weight"] = weight
            found = True
    if not found:
        return None
    return items if isinstance(loss_cfg, list) else items[0]


def plan_runs(
    losses: Sequence[str],
    seeds: Sequence[int],
    iters: int,
    sweep_lambda: Optional[Sequence[float]] = None,
) -> List[RunSpec]:
    """Expand losses x (lambdas) x seeds into run specs, in the order they will run.

    Args:
        losses: preset names (see :data:`LOSS_PRESETS`) or ``name=path/to/config.py`` (the
            ``loss_decode`` of that config).
        seeds: random seeds; every loss setting is trained once per seed.
        iters: training iterations of every run.
        sweep_lambda: lambdas; every marginal loss (CEMarginalLoss: ``marginal_weight``,
            LabelMarginalLoss: ``loss_weight``) is run once per lambda, the other losses
            once (as references).

    Returns:
        list[RunSpec]: seeds outermost, so that a comparison finished in parts has every
        loss at seed 0 before any at seed 1.

    Raises:
        ValueError: unknown preset, no loss or seed, duplicate names, ``iters < 1``, or a
            sweep without any marginal loss.
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
    settings = []
    for entry in losses:
        if "=" in entry:
            name, path = entry.split("=", 1)
            settings.append((name, name, _loss_from_config(path)))
        elif entry in LOSS_PRESETS:
            label, cfg = LOSS_PRESETS[entry]
            settings.append((entry, label, copy.deepcopy(cfg)))
        else:
            raise ValueError(
                f"unknown loss {entry!r}: use one of {sorted(LOSS_PRESETS)} or name=config.py"
            )
    names = [s[0] for s in settings]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate loss names {names}")
    expanded = []
    for name, label, cfg in settings:
        if not sweep_lambda:
            expanded.append((name, label, cfg, None))
            continue
        swept = [(lam, _with_marginal_weight(cfg, lam)) for lam in sweep_lambda]
        if swept[0][1] is None:
            expanded.append((name, label, cfg, None))
        else:
            for lam, lam_cfg in swept:
                expanded.append((name, f"{name} (λ={lam:g})", lam_cfg, float(lam)))
    if sweep_lambda and all(e[3] is None for e in expanded):
        raise ValueError(
            "--sweep-lambda needs a marginal loss (CEMarginalLoss or LabelMarginalLoss) in "
            f"--losses, got {names}"
        )
    return [
        RunSpec(name, label, cfg, int(seed), int(iters), lam)
        for seed in seeds
        for name, label, cfg, lam in expanded
    ]


def hardware() -> Dict[str, Any]:
    """Processor, core count, torch threads and accelerator of this machine."""
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


# --------------------------------------------------------------------------------------------
# One run (in a subprocess)
# --------------------------------------------------------------------------------------------


def _set_data_root(cfg: Any, data_root: str) -> None:
    for key in ("train_dataloader", "val_dataloader", "test_dataloader"):
        loader = cfg.get(key, None)
        if loader is not None and loader.get("dataset", None) is not None:
            loader.dataset.data_root = data_root


def build_run_config(
    config: str,
    spec: RunSpec,
    work_dir: str,
    cfg_options: Optional[Dict[str, Any]] = None,
    data_root: Optional[str] = None,
    ckpt_interval: Optional[int] = None,
) -> Any:
    """The base config with the run's loss, schedule length, seed and work dir.

    Validation during training is switched off (the run is evaluated once at the end);
    iteration-based parameter schedulers that ended at the base config's last iteration (or
    after ``iters``) end at ``iters``, those that would begin after ``iters`` are dropped.

    Returns:
        mmengine.config.Config
    """
    from mmengine.config import Config

    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if data_root is not None:
        _set_data_root(cfg, data_root)
    cfg.model.decode_head.loss_decode = copy.deepcopy(spec.loss_cfg)
    old_iters = cfg.train_cfg.get("max_iters", spec.iters)
    cfg.train_cfg = dict(
        type="FastResumeIterBasedTrainLoop", max_iters=spec.iters, val_interval=spec.iters
    )
    cfg.val_cfg = None
    cfg.val_dataloader = None
    cfg.val_evaluator = None
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


def evaluate_model(model: Any, dataloader: Any, ignore_index: int = 255) -> Dict[str, Any]:
    """Per-class IoU (mmseg's ``IoUMetric``) and proportions (``ProportionMetric``).

    Args:
        model: a trained mmseg segmentor (its ``test_step`` is called).
        dataloader: the evaluation dataloader (with ground truth).
        ignore_index (int): label ignored by both metrics.

    Returns:
        dict: ``classes``, ``aAcc``, ``mIoU`` (percent, NaN classes left out as in mmseg),
        ``mPropMAE`` and ``per_class`` = {``IoU``, ``Acc``, ``RegProp``, ``PredProp``,
        ``PropMAE``: {class: percent or None}}, ``num_images``.
    """
    import numpy as np
    import torch
    from mmengine.evaluator import Evaluator
    from mmseg.evaluation import IoUMetric

    from mmseg_marginal.evaluation.metrics import ProportionMetric

    meta = dataloader.dataset.metainfo
    classes = list(meta["classes"])
    iou = IoUMetric(ignore_index=ignore_index, iou_metrics=["mIoU"])
    prop = ProportionMetric(ignore_index=ignore_index, classwise=True)
    evaluator = Evaluator([iou, prop])
    evaluator.dataset_meta = meta
    model.eval()
    num_images = 0
    with torch.no_grad():
        for data in dataloader:
            outputs = model.test_step(data)
            evaluator.process(data_samples=outputs, data_batch=data)
            num_images += len(outputs)
    areas = tuple(zip(*iou.results))
    per_area = [sum(a) for a in areas]  # intersect, union, pred, label
    ret = IoUMetric.total_area_to_metrics(*per_area, metrics=["mIoU"])
    iou.compute_metrics(iou.results)  # prints mmseg's per-class table
    props = prop.compute_metrics(prop.results)

    def percent(values: Any) -> List[Optional[float]]:
        values = np.asarray(values, dtype=np.float64) * 100
        return [None if math.isnan(v) else round(float(v), 4) for v in values]

    per_class = dict(IoU=percent(ret["IoU"]), Acc=percent(ret["Acc"]))
    for key in ("RegProp", "PredProp", "PropMAE"):
        per_class[key] = [props[f"{key}.{c}"] for c in classes]
    ious = [v for v in per_class["IoU"] if v is not None]
    return dict(
        classes=classes,
        num_images=num_images,
        aAcc=round(float(ret["aAcc"]) * 100, 4),
        mIoU=round(float(np.mean(ious)), 4) if ious else None,
        mPropMAE=props["mPropMAE"],
        per_class={k: dict(zip(classes, v)) for k, v in per_class.items()},
    )


def _last_checkpoint(work_dir: str) -> Optional[str]:
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


def run_single(args: argparse.Namespace) -> None:
    """Train and evaluate one run; write its result JSON (subprocess entry point)."""
    from mmengine.runner import Runner

    import mmseg_marginal  # noqa: F401  (registers losses, metrics, datasets)

    with open(args.spec) as f:
        job = json.load(f)
    spec = RunSpec(**job["spec"])
    cfg = build_run_config(
        job["config"],
        spec,
        job["work_dir"],
        job.get("cfg_options"),
        job.get("data_root"),
        job.get("ckpt_interval"),
    )
    resumed = bool(job.get("resume")) and _last_checkpoint(job["work_dir"]) is not None
    cfg.resume = resumed
    start = time.time()
    runner = Runner.from_cfg(cfg)
    runner.train()
    train_time = time.time() - start
    start = time.time()
    loader = runner.build_dataloader(cfg.test_dataloader)
    ignore_index = cfg.model.decode_head.get("ignore_index", 255)
    metrics = evaluate_model(runner.model, loader, ignore_index)
    eval_time = time.time() - start
    small = job.get("small_classes") or cfg.get("small_classes", None)
    result = dict(
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
        finished_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        small_classes=list(small) if small else None,
        **metrics,
    )
    tmp = args.result + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=1, ensure_ascii=False)
    os.replace(tmp, args.result)


# --------------------------------------------------------------------------------------------
# The comparison (parent process)
# --------------------------------------------------------------------------------------------


@dataclass
class ComparisonOutcome:
    """What :func:`run_comparison` did with each run name."""

    finished: List[str] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)
    failed: List[str] = field(default_factory=list)


def run_comparison(
    config: str,
    runs: Sequence[RunSpec],
    out_dir: str,
    work_root: str = "work_dirs/compare_losses",
    resume: bool = False,
    force: bool = False,
    cfg_options: Optional[Dict[str, Any]] = None,
    data_root: Optional[str] = None,
    ckpt_interval: Optional[int] = None,
    small_classes: Optional[Sequence[str]] = None,
    keep_going: bool = True,
) -> ComparisonOutcome:
    """Train and evaluate ``runs`` one after the other, each in a subprocess.

    A run whose ``<out_dir>/<run name>.json`` exists is skipped (unless ``force``); its
    result file is only (re)written when the run succeeds, so a failing run never overwrites
    an earlier result.

    Args:
        config: base training config (its loss is replaced).
        runs: from :func:`plan_runs`.
        out_dir: folder of the result JSONs (created).
        work_root: parent folder of the runs' work dirs (``<work_root>/<run name>``).
        resume: continue an interrupted run from the last checkpoint in its work dir.
        force: retrain runs that already have a result.
        cfg_options: mmengine ``--cfg-options`` applied to the base config.
        data_root: data root of every dataloader (overrides the config's).
        ckpt_interval: checkpoint interval in iterations (default ``max(50, iters // 20)``).
        small_classes: classes averaged in the "small classes" column (default: the
            config's ``small_classes`` or the 4 classes of smallest GT proportion).
        keep_going: go on with the next run after a failure (else stop).

    Returns:
        ComparisonOutcome
    """
    if not osp.isfile(config):
        raise FileNotFoundError(f"config '{config}' does not exist")
    os.makedirs(out_dir, exist_ok=True)
    outcome = ComparisonOutcome()
    for i, spec in enumerate(runs, 1):
        result_path = osp.join(out_dir, f"{spec.name}.json")
        head = f"[compare_losses] run {i}/{len(runs)} {spec.name}"
        if osp.isfile(result_path) and not force:
            print(f"{head}: result exists ({result_path}), skipped", flush=True)
            outcome.skipped.append(spec.name)
            continue
        work_dir = osp.join(work_root, spec.name)
        os.makedirs(work_dir, exist_ok=True)
        job = dict(
            spec=asdict(spec),
            config=config,
            work_dir=work_dir,
            cfg_options=cfg_options,
            data_root=data_root,
            ckpt_interval=ckpt_interval,
            resume=resume,
            small_classes=list(small_classes) if small_classes else None,
        )
        job_path = osp.join(work_dir, "compare_job.json")
        with open(job_path, "w") as f:
            json.dump(job, f, indent=1, ensure_ascii=False)
        tmp_result = osp.join(work_dir, "result.json")
        if osp.exists(tmp_result):
            os.remove(tmp_result)
        last = _last_checkpoint(work_dir)
        how = f"resuming from {last}" if (resume and last) else "training"
        print(f"{head}: {how} ({spec.label}, seed {spec.seed}, {spec.iters} iters)", flush=True)
        cmd = [sys.executable, osp.abspath(__file__), "_run", job_path, tmp_result]
        rc = subprocess.call(cmd)
        ok = rc == 0 and osp.isfile(tmp_result)
        if ok:
            try:
                with open(tmp_result) as f:
                    json.load(f)
            except ValueError:
                ok = False
        if not ok:
            print(
                f"{head}: FAILED (exit code {rc}); see {work_dir}; "
                f"{'earlier result kept' if osp.isfile(result_path) else 'no result written'}",
                flush=True,
            )
            outcome.failed.append(spec.name)
            if not keep_going:
                break
            continue
        staged = result_path + ".tmp"
        shutil.copyfile(tmp_result, staged)
        os.replace(staged, result_path)
        print(f"{head}: done -> {result_path}", flush=True)
        outcome.finished.append(spec.name)
    return outcome


def load_results(out_dir: str, runs: Sequence[RunSpec]) -> List[Dict[str, Any]]:
    """The result dicts of the runs that have one in ``out_dir`` (in run order)."""
    results = []
    for spec in runs:
        path = osp.join(out_dir, f"{spec.name}.json")
        if osp.isfile(path):
            with open(path) as f:
                result = json.load(f)
            result["_spec"] = spec
            results.append(result)
    return results


def small_class_names(
    result: Dict[str, Any], override: Optional[Sequence[str]] = None
) -> List[str]:
    """Classes of the "small classes" column: given, from the config, or 4 smallest GT."""
    classes = result["classes"]
    names = list(override or result.get("small_classes") or [])
    if not names:
        share = result["per_class"]["RegProp"]
        names = sorted(classes, key=lambda c: share[c])[:4]
    unknown = [c for c in names if c not in classes]
    if unknown:
        raise ValueError(f"small classes {unknown} are not classes of the dataset {classes}")
    return names


def _mean_std(values: Sequence[Optional[float]]) -> tuple:
    vals = [v for v in values if v is not None]
    if not vals:
        return None, None
    mean = sum(vals) / len(vals)
    std = (sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) ** 0.5 if len(vals) > 1 else None
    return mean, std


def _fmt(mean: Optional[float], std: Optional[float]) -> str:
    if mean is None:
        return "–"
    return f"{mean:.1f}" if std is None else f"{mean:.1f} ± {std:.1f}"


def aggregate(
    results: Sequence[Dict[str, Any]], small: Optional[Sequence[str]] = None
) -> List[Dict[str, Any]]:
    """Group results by loss setting; per-class mean and std over seeds.

    Returns:
        list[dict]: one row per loss setting (in run order) with ``group``, ``label``,
        ``seeds``, ``iou``/``prop_mae``/``pred_prop``: {class: (mean, std)}, ``miou``,
        ``small_miou``, ``mprop_mae``: (mean, std), ``small_classes``.
    """
    groups: Dict[str, List[Dict[str, Any]]] = {}
    for r in results:
        groups.setdefault(r["_spec"].group, []).append(r)
    rows = []
    for group, members in groups.items():
        classes = members[0]["classes"]
        small_names = small_class_names(members[0], small)

        def per_class(
            key: str, members: List[Dict[str, Any]] = members, classes: List[str] = classes
        ) -> Dict[str, tuple]:
            return {c: _mean_std([m["per_class"][key][c] for m in members]) for c in classes}

        small_vals = []
        for m in members:
            vals = [m["per_class"]["IoU"][c] for c in small_names]
            vals = [v for v in vals if v is not None]
            small_vals.append(sum(vals) / len(vals) if vals else None)
        rows.append(
            dict(
                group=group,
                label=members[0]["_spec"].label,
                spec=members[0]["_spec"],
                seeds=[m["seed"] for m in members],
                classes=classes,
                small_classes=small_names,
                iou=per_class("IoU"),
                prop_mae=per_class("PropMAE"),
                pred_prop=per_class("PredProp"),
                gt_prop=per_class("RegProp"),
                miou=_mean_std([m["mIoU"] for m in members]),
                small_miou=_mean_std(small_vals),
                mprop_mae=_mean_std([m["mPropMAE"] for m in members]),
                # a resumed run's train_time_s covers only its last part: not averaged
                train_time_s=_mean_std(
                    [m["train_time_s"] for m in members if not m.get("resumed", False)]
                ),
            )
        )
    return rows


def _train_minutes(row: Dict[str, Any]) -> str:
    mean = row["train_time_s"][0]
    return "not measured (resumed)" if mean is None else f"{mean / 60:.0f} min"


def summary_markdown(
    results: Sequence[Dict[str, Any]],
    runs: Sequence[RunSpec],
    small: Optional[Sequence[str]] = None,
) -> str:
    """Markdown tables of a comparison (IoU, proportions) with its protocol."""
    if not results:
        return "No finished run yet.\n"
    rows = aggregate(results, small)
    first = results[0]
    classes = first["classes"]
    hw = sorted(
        {
            f"{r['hardware']['cpu']} ({r['hardware']['cpu_count']} cores), "
            f"device {r['hardware']['device']}"
            for r in results
        }
    )
    seeds = sorted({r["seed"] for r in results})
    iters = sorted({r["iters"] for r in results})
    done = {r["run"] for r in results}
    pending = [s.name for s in runs if s.name not in done]
    resumed = [r["run"] for r in results if r.get("resumed", False)]
    lines = [
        f"Config `{first['config']}` (dataset {first['dataset']}, data root "
        f"`{first['data_root']}`), loss replaced per run, nothing else changed.",
        f"Iterations: {', '.join(map(str, iters))}; batch {first['train_batch_size']}; "
        f"training crop {first['crop_size']}; seeds {seeds}; evaluated on "
        f"{first['num_images']} images of the test split of the config.",
        f"Hardware: {'; '.join(hw)}. Mean training time per run: "
        + ", ".join(f"{row['group']} {_train_minutes(row)}" for row in rows)
        + "."
        + (
            f" Resumed from a checkpoint (time of the last part only, not averaged): "
            f"{', '.join(resumed)}."
            if resumed
            else ""
        ),
        f"Finished runs: {len(results)} of {len(runs)} planned"
        + (f" (pending: {', '.join(pending)})." if pending else "."),
        "Values are mean ± sample std over seeds (no ± with one seed), in percent.",
        "",
        "**IoU per class (%)**",
        "",
    ]
    small_names = rows[0]["small_classes"]
    head = ["loss", "seeds"] + classes + ["mIoU", f"small-4 mIoU ({', '.join(small_names)})"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for row in rows:
        cells = [row["label"], str(len(row["seeds"]))]
        cells += [_fmt(*row["iou"][c]) for c in classes]
        cells += [_fmt(*row["miou"]), _fmt(*row["small_miou"])]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "**Mean absolute error between predicted and GT proportion per class (%)**", ""]
    head = ["loss"] + classes + ["mean"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for row in rows:
        cells = [row["label"]] + [_fmt(*row["prop_mae"][c]) for c in classes]
        cells.append(_fmt(*row["mprop_mae"]))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "**Mean predicted proportion per class (%), GT first**", ""]
    head = ["loss"] + classes
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    lines.append(
        "| GT | " + " | ".join(_fmt(rows[0]["gt_prop"][c][0], None) for c in classes) + " |"
    )
    for row in rows:
        cells = [row["label"]] + [_fmt(*row["pred_prop"][c]) for c in classes]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_summary(
    results: Sequence[Dict[str, Any]], path: str, small: Optional[Sequence[str]] = None
) -> None:
    """Grouped bars of per-class IoU and proportion MAE per loss (std over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = aggregate(results, small)
    classes = rows[0]["classes"]
    x = np.arange(len(classes))
    width = 0.8 / len(rows)
    fig, axes = plt.subplots(2, 1, figsize=(max(8, len(classes) * 0.9), 7), sharex=True)
    for ax, key, title in (
        (axes[0], "iou", "IoU (%)"),
        (axes[1], "prop_mae", "|predicted - GT proportion| (%)"),
    ):
        for i, row in enumerate(rows):
            means = [row[key][c][0] or 0.0 for c in classes]
            stds = [row[key][c][1] or 0.0 for c in classes]
            offset = (i - (len(rows) - 1) / 2) * width
            ax.bar(x + offset, means, width, yerr=stds, label=row["label"])
        ax.set_ylabel(title)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8, ncol=2)
    axes[1].set_xticks(x, classes, rotation=30, ha="right")
    iters = sorted({r["iters"] for r in results})
    seeds = sorted({r["seed"] for r in results})
    fig.suptitle(
        f"{results[0]['dataset']}: {', '.join(map(str, iters))} iterations, "
        f"seeds {', '.join(map(str, seeds))}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def write_summary(
    out_dir: str, runs: Sequence[RunSpec], small: Optional[Sequence[str]] = None
) -> Optional[str]:
    """Write ``summary.md`` and ``per_class.png`` for the finished runs; return the markdown."""
    results = load_results(out_dir, runs)
    if not results:
        return None
    text = summary_markdown(results, runs, small)
    with open(osp.join(out_dir, "summary.md"), "w") as f:
        f.write(text)
    plot_summary(results, osp.join(out_dir, "per_class.png"), small)
    return text


def check_data(
    config: str, cfg_options: Optional[Dict[str, Any]] = None, data_root: Optional[str] = None
) -> None:
    """Build the training and test datasets of ``config`` once, before any run starts.

    Datasets of ``mmseg_marginal`` raise one ``FileNotFoundError`` naming the path when the
    data root, an image folder or annotations are missing; checking here gives that error
    once instead of one failed run per loss and seed.

    Raises:
        FileNotFoundError: missing config, data root, split folder or annotations.
        ValueError: a split without any sample.
    """
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS

    import mmseg_marginal  # noqa: F401  (registers the datasets)

    if not osp.isfile(config):
        raise FileNotFoundError(f"config '{config}' does not exist")
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if data_root is not None:
        _set_data_root(cfg, data_root)
    init_default_scope(cfg.get("default_scope", "mmseg"))
    for key in ("train_dataloader", "test_dataloader"):
        dataset_cfg = copy.deepcopy(cfg[key].dataset)
        dataset_cfg.pipeline = []
        dataset = DATASETS.build(dataset_cfg)
        if len(dataset) == 0:
            raise ValueError(f"the {key} dataset of '{config}' has no sample")


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from mmengine.config import DictAction

    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="presets: " + ", ".join(f"{k} ({v[0]})" for k, v in LOSS_PRESETS.items()),
    )
    parser.add_argument("--config", required=True, help="base training config (model + data)")
    parser.add_argument(
        "--losses",
        nargs="+",
        required=True,
        help="loss presets, or name=config.py to take that config's loss_decode",
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--iters", type=int, required=True, help="training iterations per run")
    parser.add_argument("--out", required=True, help="folder of the result JSONs and summary")
    parser.add_argument(
        "--work-root", default="work_dirs/compare_losses", help="parent of the runs' work dirs"
    )
    parser.add_argument(
        "--sweep-lambda",
        nargs="+",
        type=float,
        help="run every marginal loss once per lambda (marginal_weight)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue interrupted runs from their checkpoint"
    )
    parser.add_argument("--force", action="store_true", help="retrain runs that have a result")
    parser.add_argument("--data-root", help="data root of every dataloader")
    parser.add_argument("--ckpt-interval", type=int, help="checkpoint every N iterations")
    parser.add_argument("--small-classes", nargs="+", help="classes of the small-classes mIoU")
    parser.add_argument(
        "--summary-only", action="store_true", help="only tabulate the finished runs"
    )
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, help="config overrides")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; returns the exit code (1 when a run failed)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "_run":
        run_single(argparse.Namespace(spec=argv[1], result=argv[2]))
        return 0
    args = parse_args(argv)
    try:
        runs = plan_runs(args.losses, args.seeds, args.iters, args.sweep_lambda)
        if not args.summary_only:
            check_data(args.config, args.cfg_options, args.data_root)
    except (ValueError, FileNotFoundError) as err:
        print(f"compare_losses: error: {err}", file=sys.stderr)
        return 2
    outcome = ComparisonOutcome()
    if not args.summary_only:
        outcome = run_comparison(
            args.config,
            runs,
            args.out,
            work_root=args.work_root,
            resume=args.resume,
            force=args.force,
            cfg_options=args.cfg_options,
            data_root=args.data_root,
            ckpt_interval=args.ckpt_interval,
            small_classes=args.small_classes,
        )
    text = write_summary(args.out, runs, args.small_classes)
    print(text or "No finished run yet.")
    print(
        f"[compare_losses] finished {len(outcome.finished)}, skipped {len(outcome.skipped)}, "
        f"failed {len(outcome.failed)}" + (f": {outcome.failed}" if outcome.failed else ""),
        flush=True,
    )
    return 1 if outcome.failed else 0


if __name__ == "__main__":
    sys.exit(main())

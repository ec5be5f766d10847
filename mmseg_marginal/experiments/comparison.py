"""Running a comparison: every planned run, one after the other, each in its own process.

A run whose result JSON exists is skipped, an interrupted run continues from the last
checkpoint of its work dir (``resume``), and a failing run never overwrites an earlier result,
so a comparison longer than one sitting can be completed in parts.
"""

from __future__ import annotations

import json
import os
import os.path as osp
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from .plan import RunSpec
from .progress import ProgressBar, read_progress
from .run import last_checkpoint, load_config

#: In quiet mode, the output of a run's process goes to this file of its work dir.
OUTPUT_LOG = "output.log"
#: Lines of that output printed when the run fails.
FAILURE_TAIL = 40


@dataclass
class ComparisonOutcome:
    """What :func:`run_comparison` did with each run name."""

    finished: List[str] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)
    failed: List[str] = field(default_factory=list)


def check_data(
    config: str,
    *,
    cfg_options: Optional[Dict[str, Any]] = None,
    data_root: Optional[str] = None,
) -> None:
    """Check the training and test data of ``config`` once, before any run starts.

    The pre-run check of the training tools (``check_data_folders``): folders, images, their
    annotations and the class count; one error here instead of one failed run per loss and
    seed.

    Raises:
        FileNotFoundError: missing config, data root, split folder or annotation.
        ValueError: the dataset's classes do not fit the model's head.
    """
    from mmengine.registry import init_default_scope

    import mmseg_marginal  # noqa: F401  (registers the datasets)
    from mmseg_marginal.utils.run_checks import check_data_folders

    cfg = load_config(config, cfg_options=cfg_options, data_root=data_root)
    init_default_scope(cfg.get("default_scope", "mmseg"))
    check_data_folders(cfg, ("train", "test"))


def run_comparison(
    config: str,
    runs: Sequence[RunSpec],
    out_dir: str,
    *,
    work_root: str = "work_dirs/compare_losses",
    resume: bool = False,
    force: bool = False,
    cfg_options: Optional[Dict[str, Any]] = None,
    data_root: Optional[str] = None,
    ckpt_interval: Optional[int] = None,
    small_classes: Optional[Sequence[str]] = None,
    keep_going: bool = True,
    quiet: bool = False,
) -> ComparisonOutcome:
    """Train and evaluate ``runs`` one after the other, each in a subprocess.

    A run whose ``<out_dir>/<run name>.json`` exists is skipped (unless ``force``); its
    result file is only (re)written when the run succeeds, so a failing run never overwrites
    an earlier result.

    Args:
        config: base training config (its loss is replaced).
        runs: from :func:`~mmseg_marginal.experiments.plan_runs`.
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
        quiet: send each run's output (mmengine's Runner logs) to ``<work dir>/output.log``
            and show one progress bar per run instead
            (:class:`~mmseg_marginal.experiments.progress.ProgressBar`); when a run fails, the
            last lines of its output are printed. Otherwise the output is printed as it comes.

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
        progress_path = osp.join(work_dir, "progress.json")
        if quiet:
            job["progress_file"] = progress_path
            if osp.exists(progress_path):
                os.remove(progress_path)
        job_path = osp.join(work_dir, "compare_job.json")
        with open(job_path, "w") as f:
            json.dump(job, f, indent=1, ensure_ascii=False)
        tmp_result = osp.join(work_dir, "result.json")
        if osp.exists(tmp_result):
            os.remove(tmp_result)
        last = last_checkpoint(work_dir)
        how = f"resuming from {last}" if (resume and last) else "training"
        print(f"{head}: {how} ({spec.label}, seed {spec.seed}, {spec.iters} iters)", flush=True)
        cmd = [sys.executable, "-m", "mmseg_marginal.experiments.worker", job_path, tmp_result]
        if quiet:
            rc = _run_quietly(cmd, osp.join(work_dir, OUTPUT_LOG), progress_path, spec.name)
        else:
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


def _run_quietly(cmd: List[str], log_path: str, progress_path: str, label: str) -> int:
    """Run ``cmd`` with its output in ``log_path``, drawing its progress; return its exit code.

    On failure the last :data:`FAILURE_TAIL` lines of the output are printed (stderr).
    """
    bar = ProgressBar(label)
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        try:
            while True:
                try:
                    rc = proc.wait(timeout=0.5)
                    break
                except subprocess.TimeoutExpired:
                    pass
                progress = read_progress(progress_path)
                if progress is not None:
                    bar.update(progress["phase"], progress["done"], progress["total"])
        except BaseException:  # Ctrl-C: stop the run too
            proc.kill()
            proc.wait()
            bar.close()
            raise
    progress = read_progress(progress_path)
    if progress is not None:
        bar.update(progress["phase"], progress["done"], progress["total"])
    bar.close()
    if rc != 0:
        with open(log_path, errors="replace") as f:
            lines = f.read().splitlines()
        tail = "\n".join(lines[-FAILURE_TAIL:])
        print(
            f"--- last {min(FAILURE_TAIL, len(lines))} lines of {log_path} ---\n{tail}\n---",
            file=sys.stderr,
            flush=True,
        )
    return rc

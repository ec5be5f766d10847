"""Launching mmseg runs on machines without CUDA (CPU and multi-process gloo)."""

from __future__ import annotations

import gc
import logging
import os
from typing import Any

import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.logging import print_log


def replace_sync_bn(node: Any) -> int:
    """Replace ``type='SyncBN'`` by ``'BN'`` in a config tree, in place.

    Args:
        node (Any): A config dict (``cfg._cfg_dict`` for a whole ``Config``), list or value;
            dicts and lists are searched at any depth.

    Returns:
        int: How many ``SyncBN`` entries were replaced.
    """
    count = 0
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "type" and value == "SyncBN":
                node[key] = "BN"
                count += 1
            else:
                count += replace_sync_bn(value)
    elif isinstance(node, list):
        for value in node:
            count += replace_sync_bn(value)
    return count


def setup_cpu_distributed(cfg: Config, launcher: str) -> None:
    """Prepare a multi-process run on a machine without CUDA.

    mmengine 0.10.7's ``pytorch`` launcher calls ``torch.cuda.set_device`` and wraps the model
    with ``device_ids=[LOCAL_RANK]``, both of which fail without CUDA. When CUDA is absent and
    the launcher is not ``none``, this initialises the process group with the ``gloo`` backend
    (mmengine then skips its own initialisation), wraps the model without ``device_ids``, and
    replaces SyncBN (GPU only) by BN, with a warning. With CUDA it does nothing.

    Args:
        cfg (Config): The run's config, changed in place.
        launcher (str): ``none``, ``pytorch``, ``slurm`` or ``mpi``.
    """
    if launcher == "none" or torch.cuda.is_available():
        return
    if launcher != "pytorch":
        raise ValueError(
            f"launcher {launcher!r} without CUDA is not supported; use --launcher pytorch "
            "(tools/dist_train.sh) for multi-process CPU runs"
        )
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend="gloo")
    cfg.model_wrapper_cfg = dict(type="MMDistributedDataParallel", device_ids=None)
    replaced = replace_sync_bn(cfg._cfg_dict)
    if replaced and int(os.environ.get("RANK", "0")) == 0:
        print_log(
            f"No CUDA: {replaced} SyncBN layer config(s) replaced by BN for this CPU run.",
            logger="current",
            level=logging.WARNING,
        )


def shutdown_distributed(synchronize: bool = True) -> None:
    """Destroy the default process group, if any, before the process exits.

    Without it, the gloo backend's threads are still running at interpreter exit and a rank can
    abort with ``terminate called without an active exception``.
    With ``synchronize``, the ranks first meet at a barrier, so that no rank tears its
    connections down while another still uses them; pass False after an error, when the other
    ranks may never reach the barrier. Call it after the Runner has gone out of scope.
    """
    if torch_dist.is_available() and torch_dist.is_initialized():
        # The Runner and its DDP wrapper sit in reference cycles; free them now, while the
        # process group they hold is alive, rather than at interpreter exit.
        gc.collect()
        if synchronize:
            torch_dist.barrier()
        torch_dist.destroy_process_group()

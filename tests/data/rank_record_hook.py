"""A test-only hook: each rank writes what it did to ``<work_dir>/rank<r>.json``."""

import json
import os.path as osp

import torch
from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook, LoggerHook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class RankRecordHook(Hook):
    def __init__(self) -> None:
        self.record = {"train_iters": [], "train_images": [], "test_images": []}

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.record["train_iters"].append(runner.iter)
        self.record["train_images"] += [s.img_path for s in data_batch["data_samples"]]

    def after_train(self, runner) -> None:
        model = runner.model.module if hasattr(runner.model, "module") else runner.model
        self.record["param_sum"] = float(sum(p.detach().double().sum() for p in model.parameters()))
        self._dump(runner)

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.record["test_images"] += [s.img_path for s in data_batch["data_samples"]]

    def after_test(self, runner) -> None:
        self.record["logger_hooks"] = [
            type(h).__name__ for h in runner.hooks if isinstance(h, LoggerHook)
        ]
        self._dump(runner)

    def _dump(self, runner) -> None:
        self.record["world_size"] = get_world_size()
        self.record["threads"] = torch.get_num_threads()
        with open(osp.join(runner.work_dir, f"rank{get_rank()}.json"), "w") as f:
            json.dump(self.record, f)

"""A test-only hook: ends the training process abruptly (as a kill would) after an iteration,
once that iteration's checkpoint is written."""

import os

from mmengine.hooks import Hook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class InterruptAfterIterHook(Hook):
    priority = "LOWEST"  # after CheckpointHook

    def __init__(self, after_iter: int) -> None:
        self.after_iter = after_iter

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if runner.iter + 1 == self.after_iter:
            os._exit(3)

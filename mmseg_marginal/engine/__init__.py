"""Engine pieces: checkpoint loading on current torch, a fast-resuming train loop, hooks."""

from . import hooks  # noqa: F401
from .checkpoint import (
    CheckpointLoadError,
    allow_mmengine_checkpoint_globals,
    load_from_local_safe,
    mmengine_checkpoint_globals,
)
from .loops import FastResumeIterBasedTrainLoop, skip_infinite_sampler

__all__ = [
    "CheckpointLoadError",
    "FastResumeIterBasedTrainLoop",
    "allow_mmengine_checkpoint_globals",
    "load_from_local_safe",
    "mmengine_checkpoint_globals",
    "skip_infinite_sampler",
]

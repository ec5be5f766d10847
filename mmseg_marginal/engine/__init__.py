"""Engine pieces: checkpoint loading on current torch, and training hooks."""

from . import hooks  # noqa: F401
from .checkpoint import (
    CheckpointLoadError,
    allow_mmengine_checkpoint_globals,
    load_from_local_safe,
    mmengine_checkpoint_globals,
)

__all__ = [
    "CheckpointLoadError",
    "allow_mmengine_checkpoint_globals",
    "load_from_local_safe",
    "mmengine_checkpoint_globals",
]

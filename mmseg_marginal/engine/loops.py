"""An iteration-based train loop that resumes without re-loading the skipped batches.

mmengine's ``IterBasedTrainLoop`` resumes a run at iteration N by drawing N batches from the
dataloader and throwing them away, so that the run continues with the same sample order. Every
one of those batches is read from disk and augmented, so the time before the first training
step grows with N (N × batch size images loaded and augmented).

``FastResumeIterBasedTrainLoop`` reaches the same sample order by advancing the index stream of
mmengine's ``InfiniteSampler`` instead, without loading any image. What it does not replay are the
random draws of the augmentations (crops, flips, photometric distortion) in the data workers:
after a fast resume they start from the workers' seeds again, so the images are the same as in an
uninterrupted run but their augmentations are fresh draws from the same distribution. For other
samplers or batch samplers it falls back to mmengine's behaviour and says so in the log.

In a config::

    train_cfg = dict(type='FastResumeIterBasedTrainLoop', max_iters=80000, val_interval=8000)
"""

import itertools
import logging
from typing import Any, Iterator, Optional

import mmengine
from mmengine.dataset import InfiniteSampler
from mmengine.logging import print_log
from mmengine.runner.loops import IterBasedTrainLoop, _InfiniteDataloaderIterator
from mmengine.utils import digit_version
from mmseg.registry import LOOPS
from torch.utils.data import BatchSampler, DataLoader

__all__ = ["FastResumeIterBasedTrainLoop", "skip_infinite_sampler"]


def skip_infinite_sampler(dataloader: DataLoader, num_batches: int) -> Optional[str]:
    """Advance the index stream of ``dataloader``'s ``InfiniteSampler`` by ``num_batches``.

    After the call, the next batch the sampler produces is the one an untouched sampler would
    produce after ``num_batches`` batches (on this rank). Nothing is loaded.

    Args:
        dataloader (DataLoader): a dataloader whose ``sampler`` is mmengine's
            ``InfiniteSampler`` (or a subclass) and whose ``batch_sampler`` is torch's
            ``BatchSampler`` over that sampler.
        num_batches (int): batches to skip, >= 0.

    Returns:
        None when the sampler was advanced, otherwise the reason it could not be (the caller
        then has to skip by loading batches).
    """
    if num_batches < 0:
        raise ValueError(f"num_batches must be >= 0, got {num_batches}")
    sampler = getattr(dataloader, "sampler", None)
    batch_sampler = getattr(dataloader, "batch_sampler", None)
    if not isinstance(sampler, InfiniteSampler):
        return f"the sampler is {type(sampler).__name__}, not InfiniteSampler"
    if type(batch_sampler) is not BatchSampler or batch_sampler.sampler is not sampler:
        return f"the batch sampler is {type(batch_sampler).__name__}, not torch's BatchSampler"
    start = num_batches * batch_sampler.batch_size
    # _indices_of_rank() restarts this rank's stream from the sampler's seed.
    sampler.indices = itertools.islice(sampler._indices_of_rank(), start, None)
    return None


def mmengine_loop_skips_on_resume() -> bool:
    """Whether mmengine's ``IterBasedTrainLoop.run`` draws and discards the trained batches.

    mmengine >= 0.10.3 does ("Advance dataloader N steps to skip data that has already been
    trained"); earlier releases start the sample stream from its beginning on resume, so there
    is nothing to answer with placeholders.
    """
    return digit_version(mmengine.__version__) >= digit_version("0.10.3")


class _SkippedBatches:
    """Answers the first ``count`` ``next()`` calls with ``None``, then delegates to ``inner``.

    The parent loop's ``run`` discards ``self._iter`` batches on resume; once the sampler has
    been advanced, those calls must not touch the dataloader.
    """

    def __init__(self, inner: Iterator[Any], count: int) -> None:
        self._inner = inner
        self._count = count

    def __iter__(self) -> "_SkippedBatches":
        return self

    def __next__(self) -> Any:
        if self._count > 0:
            self._count -= 1
            return None
        return next(self._inner)


@LOOPS.register_module()
class FastResumeIterBasedTrainLoop(IterBasedTrainLoop):
    """``IterBasedTrainLoop`` that skips the already-trained batches at the sampler on resume.

    Same arguments as mmengine's ``IterBasedTrainLoop`` (``runner``, ``dataloader``,
    ``max_iters``, ``val_begin``, ``val_interval``, ``dynamic_intervals``). A run that starts
    at iteration 0 is identical to one with ``IterBasedTrainLoop``.
    """

    def run(self) -> Any:
        """Train; on resume, advance the sampler instead of loading the skipped batches."""
        if self._iter > 0:
            reason = skip_infinite_sampler(self.dataloader, self._iter)
            if reason is None:
                parent_skips = mmengine_loop_skips_on_resume()
                print_log(
                    f"FastResumeIterBasedTrainLoop: advanced the sampler by {self._iter} "
                    "batches without loading them (the augmentations' random draws are not "
                    "replayed)"
                    + (
                        "; the 'Advance dataloader' step that follows costs nothing"
                        if parent_skips
                        else ""
                    ),
                    logger="current",
                    level=logging.INFO,
                )
                # A new iterator starts from the advanced index stream; batches the old one
                # had prefetched are dropped.
                fresh = _InfiniteDataloaderIterator(self.dataloader)
                self.dataloader_iterator = (
                    _SkippedBatches(fresh, self._iter) if parent_skips else fresh
                )
            else:
                print_log(
                    f"FastResumeIterBasedTrainLoop: {reason}; skipping {self._iter} batches "
                    "by loading them, as IterBasedTrainLoop does",
                    logger="current",
                    level=logging.WARNING,
                )
        return super().run()

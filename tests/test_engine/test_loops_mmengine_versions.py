"""FastResumeIterBasedTrainLoop with the resume behaviour of each mmengine generation.

mmengine >= 0.10.3's ``IterBasedTrainLoop.run`` draws and discards the already-trained batches
on resume; 0.7-0.10.2 do not. The parent ``run`` is replaced by a stand-in of either behaviour
(the first batch it trains on is what matters), around a real ``InfiniteSampler`` dataloader.
"""

import mmengine
import pytest
from mmengine.dataset import InfiniteSampler
from mmengine.runner.loops import IterBasedTrainLoop
from torch.utils.data import DataLoader, Dataset

from mmseg_marginal.engine import loops
from mmseg_marginal.engine.loops import FastResumeIterBasedTrainLoop


class Numbers(Dataset):
    def __len__(self) -> int:
        return 10

    def __getitem__(self, index: int) -> int:
        return index


def loader() -> DataLoader:
    dataset = Numbers()
    return DataLoader(dataset, batch_size=3, sampler=InfiniteSampler(dataset, seed=7))


def first_batch_after_resume(monkeypatch, skips: bool, resume_at: int) -> list:
    def parent_run(self):
        if skips:  # mmengine >= 0.10.3: "Advance dataloader"
            for _ in range(self._iter):
                next(self.dataloader_iterator)
        return next(self.dataloader_iterator).tolist()

    monkeypatch.setattr(IterBasedTrainLoop, "run", parent_run)
    monkeypatch.setattr(mmengine, "__version__", "0.10.3" if skips else "0.8.4")
    loop = object.__new__(FastResumeIterBasedTrainLoop)  # only what run() reads
    loop.dataloader = loader()
    loop._iter = resume_at
    return loop.run()


@pytest.mark.parametrize("skips", [True, False], ids=["mmengine>=0.10.3", "mmengine<0.10.3"])
@pytest.mark.parametrize("resume_at", [1, 5])
def test_resume_continues_the_uninterrupted_stream(monkeypatch, skips, resume_at):
    it = iter(loader())
    uninterrupted = [next(it).tolist() for _ in range(resume_at + 1)]
    got = first_batch_after_resume(monkeypatch, skips, resume_at)
    assert loops.mmengine_loop_skips_on_resume() is skips
    assert got == uninterrupted[resume_at]

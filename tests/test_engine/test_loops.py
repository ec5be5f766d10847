"""FastResumeIterBasedTrainLoop: same sample order as mmengine's resume, without loading."""

from pathlib import Path

import pytest
from mmengine.config import Config
from mmengine.dataset import DefaultSampler, InfiniteSampler
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmseg.registry import TRANSFORMS
from tiny_data import make_tiny_dataset
from torch.utils.data import DataLoader, Dataset

from mmseg_marginal.engine.loops import skip_infinite_sampler

REPO = Path(__file__).resolve().parents[2]

CONFIG = REPO / "tests" / "data" / "configs" / "tiny_fpn_r18.py"


class Numbers(Dataset):
    def __init__(self, size: int) -> None:
        self.size = size
        self.loaded = 0

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> int:
        self.loaded += 1
        return index


def infinite_loader(dataset: Dataset, batch_size: int = 3, seed: int = 7) -> DataLoader:
    sampler = InfiniteSampler(dataset, shuffle=True, seed=seed)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler)


def batches(loader: DataLoader, count: int) -> list:
    it = iter(loader)
    return [next(it).tolist() for _ in range(count)]


@pytest.mark.parametrize("skip", [0, 1, 4, 9])
def test_skipped_sampler_continues_where_the_full_stream_is(skip):
    # 5 images, batch 3: batches straddle epoch boundaries (a new permutation every 5 indices).
    full = batches(infinite_loader(Numbers(5)), skip + 4)
    data = Numbers(5)
    loader = infinite_loader(data)
    assert skip_infinite_sampler(loader, skip) is None
    assert batches(loader, 4) == full[skip:]
    assert data.loaded == 4 * 3  # nothing was loaded for the skipped batches


def test_samplers_it_cannot_advance_are_reported_not_guessed():
    data = Numbers(5)
    loader = DataLoader(data, batch_size=2, sampler=DefaultSampler(data, shuffle=False))
    assert "DefaultSampler" in skip_infinite_sampler(loader, 3)
    plain = DataLoader(data, batch_size=2, shuffle=True)
    assert "RandomSampler" in skip_infinite_sampler(plain, 3)
    with pytest.raises(ValueError, match="-1"):
        skip_infinite_sampler(infinite_loader(data), -1)


LOADED: list = []


@TRANSFORMS.register_module(force=True)
class _CountLoads:
    """Test-only transform: records every sample the train pipeline prepares (in-process)."""

    def __call__(self, results: dict) -> dict:
        LOADED.append(results["img_path"])
        return results


class _RecordImages(Hook):
    def __init__(self) -> None:
        self.images: dict = {}

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.images[runner.iter] = [s.img_path for s in data_batch["data_samples"]]


def run(data_root, work_dir, name, max_iters, loop, resume=False, workers=0):
    cfg = Config.fromfile(str(CONFIG))
    for split in ("train", "val", "test"):
        cfg[f"{split}_dataloader"].dataset.data_root = str(data_root)
    cfg.train_dataloader.num_workers = workers
    cfg.train_dataloader.persistent_workers = workers > 0
    cfg.train_dataloader.dataset.pipeline.insert(2, dict(type="_CountLoads"))
    cfg.train_cfg = dict(type=loop, max_iters=max_iters, val_interval=1000)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.default_hooks.checkpoint = dict(type="CheckpointHook", by_epoch=False, interval=3)
    cfg.default_hooks.logger = dict(type="LoggerHook", interval=100)
    cfg.randomness = dict(seed=3)
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = name
    cfg.resume = resume
    runner = Runner.from_cfg(cfg)
    recorder = _RecordImages()
    runner.register_hook(recorder)
    LOADED.clear()
    runner.train()
    _stop_workers(runner.train_loop.dataloader)
    return recorder.images, list(LOADED)


def _stop_workers(loader: DataLoader) -> None:
    """Stop the persistent worker processes of ``loader`` now. Left to the garbage collector
    (the Runner sits in reference cycles), they would stop only at torch's timeout, 5 s per
    worker: the collector finalizes the loader's index queues before the loader's iterator,
    so the iterator's stop message never reaches the workers."""
    iterator = getattr(loader, "_iterator", None)  # kept by the loader for persistent workers
    if iterator is not None:
        iterator._shutdown_workers()


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    # 5 images at batch 2: skipped batches cross epoch boundaries.
    return make_tiny_dataset(tmp_path_factory.mktemp("tiny_loop"), num_train=5, num_val=1)


@pytest.fixture(scope="module")
def uninterrupted(data_root, tmp_path_factory) -> dict:
    """The images of each iteration of one uninterrupted 7-iteration run (mmengine's loop),
    the reference of the resumed runs below."""
    full, _ = run(data_root, tmp_path_factory.mktemp("full"), "full", 7, "IterBasedTrainLoop")
    assert sorted(full) == list(range(7))
    return full


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_fast_resume_trains_on_the_batches_of_an_uninterrupted_run(
    data_root, tmp_path, workers, uninterrupted
):
    full = uninterrupted
    loop = "FastResumeIterBasedTrainLoop"
    first, _ = run(data_root, tmp_path / "run", f"first{workers}", 3, loop, workers=workers)
    assert first == {i: full[i] for i in (0, 1, 2)}  # from scratch it is IterBasedTrainLoop
    resumed, loaded = run(
        data_root, tmp_path / "run", f"resumed{workers}", 7, loop, resume=True, workers=workers
    )
    assert resumed == {i: full[i] for i in (3, 4, 5, 6)}
    if workers == 0:
        # only the 4 trained batches were prepared, not the 3 skipped ones
        assert loaded == [p for i in (3, 4, 5, 6) for p in full[i]]


@pytest.mark.slow
def test_resume_with_mmengine_loop_loads_the_skipped_batches(data_root, tmp_path, uninterrupted):
    # The baseline the fast loop improves on: same order, 3 extra batches prepared.
    run(data_root, tmp_path / "run", "base_first", 3, "IterBasedTrainLoop")
    resumed, loaded = run(
        data_root, tmp_path / "run", "base_resumed", 7, "IterBasedTrainLoop", resume=True
    )
    assert resumed == {i: uninterrupted[i] for i in (3, 4, 5, 6)}
    assert len(loaded) == 7 * 2

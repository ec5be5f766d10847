"""MarginalStatsHook: switches the losses' statistics on and reads their ``last_stats`` into
message-hub scalars."""

from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
from mmengine.logging import MessageHub, MMLogger
from mmseg.registry import HOOKS
from torch import nn

from mmseg_marginal.engine.hooks import MarginalStatsHook, find_stat_modules
from mmseg_marginal.losses import CEMarginalLoss, LabelMarginalLoss, LossStats, StatsReporter


class FakeLoss(StatsReporter, nn.Module):
    """A module with the statistics API whose statistics the test sets."""

    def __init__(self, name, combined):
        nn.Module.__init__(self)
        self.loss_name = name
        self.combined_regularizer = combined
        self._init_stats()

    def record(self, marginal, prop_mae):
        assert self.stats_enabled  # the hook switched the statistics on
        self._last_stats = LossStats(torch.tensor(marginal), torch.tensor(prop_mae))


class Head(nn.Module):
    def __init__(self, loss):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1)
        self.loss_decode = loss


class Segmentor(nn.Module):
    def __init__(self):
        super().__init__()
        self.decode_head = Head(FakeLoss("loss_ce_marginal", combined=True))
        self.auxiliary_head = nn.ModuleList(
            [Head(nn.Identity()), Head(FakeLoss("loss_marginal", combined=False))]
        )


def fake_runner(model, name):
    return SimpleNamespace(
        model=model,
        iter=0,
        message_hub=MessageHub.get_instance(name),
        logger=MMLogger.get_instance(name),
    )


def set_stats(model, step):
    model.decode_head.loss_decode.record(0.5 + step, 0.25 + step)
    model.auxiliary_head[1].loss_decode.record(2.0 + step, 0.125 + step)


def run_iters(hook, runner, iters):
    hook.before_train(runner)
    for i in range(iters):
        runner.iter = i
        set_stats(getattr(runner.model, "module", runner.model), i)
        hook.after_train_iter(runner, i)
        runner.iter = i + 1


def history(runner, key):
    return runner.message_hub.log_scalars[key].data[0].tolist()


def test_registered_and_priority():
    assert HOOKS.get("MarginalStatsHook") is MarginalStatsHook
    # must run before LoggerHook (BELOW_NORMAL) in after_train_iter
    assert MarginalStatsHook().priority == "NORMAL"


def test_keys_and_values():
    runner = fake_runner(Segmentor(), "test_keys_and_values")
    run_iters(MarginalStatsHook(), runner, 3)
    keys = {k for k in runner.message_hub.log_scalars if k.startswith("train/")}
    assert keys == {
        "train/decode.loss_ce_marginal_prop_mae",
        "train/decode.loss_ce_marginal_marginal",  # combined loss: R is hidden in the sum
        "train/aux_1.loss_marginal_prop_mae",  # standalone R is logged as aux_1.loss_marginal
    }
    assert history(runner, "train/decode.loss_ce_marginal_prop_mae") == [0.25, 1.25, 2.25]
    assert history(runner, "train/decode.loss_ce_marginal_marginal") == [0.5, 1.5, 2.5]
    assert history(runner, "train/aux_1.loss_marginal_prop_mae") == [0.125, 1.125, 2.125]


def test_interval_and_log_marginal():
    runner = fake_runner(Segmentor(), "test_interval_and_log_marginal")
    run_iters(MarginalStatsHook(interval=2, log_marginal=True), runner, 5)
    # iterations 2 and 4 (1-based) only
    assert history(runner, "train/aux_1.loss_marginal_marginal") == [3.0, 5.0]
    runner = fake_runner(Segmentor(), "test_interval_and_log_marginal_off")
    run_iters(MarginalStatsHook(log_marginal=False), runner, 1)
    assert not any(k.endswith("_marginal") for k in runner.message_hub.log_scalars)


def test_empty_stats_and_no_module(tmp_path):
    model = Segmentor()
    runner = fake_runner(model, "test_empty_stats")
    hook = MarginalStatsHook()
    hook.before_train(runner)
    hook.after_train_iter(runner, 0)  # stats not set yet: nothing written, no error
    assert not runner.message_hub.log_scalars
    logger = MMLogger.get_instance("test_no_module", log_file=str(tmp_path / "log.txt"))
    runner = SimpleNamespace(model=nn.Linear(1, 1), iter=0, logger=logger)
    hook.before_train(runner)
    assert "has no loss that reports statistics" in (tmp_path / "log.txt").read_text()


def test_bad_interval():
    with pytest.raises(ValueError, match="got 0"):
        MarginalStatsHook(interval=0)


def test_unwraps_ddp(tmp_path):
    init = f"file://{tmp_path / 'init'}"
    dist.init_process_group("gloo", init_method=init, rank=0, world_size=1)
    try:
        model = Segmentor()
        wrapped = nn.parallel.DistributedDataParallel(model)
        found = find_stat_modules(wrapped)
        assert [path for path, _ in found] == [
            "decode_head.loss_decode",
            "auxiliary_head.1.loss_decode",
        ]
        runner = fake_runner(wrapped, "test_unwraps_ddp")
        run_iters(MarginalStatsHook(), runner, 1)
        assert history(runner, "train/decode.loss_ce_marginal_prop_mae") == [0.25]
    finally:
        dist.destroy_process_group()


def test_real_losses_stats():
    """With the real losses: the logged prop_mae is the mean |y - q| of the argmax, by hand."""
    torch.manual_seed(0)
    model = Segmentor()
    model.decode_head.loss_decode = CEMarginalLoss(penalty="l1")
    model.auxiliary_head[1].loss_decode = LabelMarginalLoss(penalty="kl")
    logits = torch.randn(2, 3, 4, 4)
    label = torch.randint(0, 3, (2, 4, 4))
    label[0, 0] = 255
    model.train()
    model.decode_head.loss_decode(logits, label)
    assert model.decode_head.loss_decode.last_stats is None  # not computed without the hook
    hook = MarginalStatsHook()
    hook.before_train(fake_runner(model, "test_real_losses_stats"))
    model.decode_head.loss_decode(logits, label)
    model.auxiliary_head[1].loss_decode(logits, label)
    scalars = hook.collect(model)
    assert set(scalars) == {
        "decode.loss_ce_marginal_prop_mae",
        "decode.loss_ce_marginal_marginal",
        "aux_1.loss_marginal_prop_mae",
    }
    errors = []
    for b in range(2):
        valid = label[b] != 255
        y = torch.bincount(label[b][valid], minlength=3) / valid.sum()
        q = torch.bincount(logits[b].argmax(0)[valid], minlength=3) / valid.sum()
        errors.append((y - q).abs())
    expected = torch.stack(errors).mean().item()
    assert scalars["decode.loss_ce_marginal_prop_mae"] == pytest.approx(expected, rel=1e-6)
    assert scalars["aux_1.loss_marginal_prop_mae"] == pytest.approx(expected, rel=1e-6)
    r = model.decode_head.loss_decode.last_stats.marginal.item()
    assert scalars["decode.loss_ce_marginal_marginal"] == pytest.approx(r)

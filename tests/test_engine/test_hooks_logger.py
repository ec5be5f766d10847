"""MainProcessLoggerHook: the test metrics JSON written by the main process only, and the
config switch that tools/test.py applies."""

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from mmengine.config import Config
from mmengine.hooks import LoggerHook

import mmseg_marginal.engine.hooks.logger_hook as logger_hook_module
from mmseg_marginal.engine.hooks import MainProcessLoggerHook, use_main_process_logger_hook

REPO = Path(__file__).resolve().parents[2]
TIMESTAMP = "20261130_000000"


class FakeLogProcessor:
    def get_log_after_epoch(self, runner, batch_idx, mode, with_non_scalar=False):
        assert (batch_idx, mode, with_non_scalar) == (3, "test", True)
        return {"mIoU": 41.5, "aAcc": 80.25}, "Iter(test) [3/3]    mIoU: 41.5000  aAcc: 80.2500"


def fake_runner(log_dir: Path, lines: list) -> SimpleNamespace:
    return SimpleNamespace(
        log_processor=FakeLogProcessor(),
        test_dataloader=[0, 1, 2],
        logger=SimpleNamespace(info=lines.append),
        log_dir=str(log_dir),
        timestamp=TIMESTAMP,
    )


def run_after_test_epoch(tmp_path: Path, monkeypatch, main: bool) -> tuple:
    monkeypatch.setattr(logger_hook_module, "is_main_process", lambda: main)
    hook = MainProcessLoggerHook()
    hook.json_log_path = f"{TIMESTAMP}.json"  # what LoggerHook.before_run sets
    lines: list = []
    hook.after_test_epoch(fake_runner(tmp_path, lines), {"mIoU": 41.5, "aAcc": 80.25})
    return lines, sorted(p.name for p in tmp_path.iterdir())


def test_main_process_logs_and_writes_the_metrics_json(tmp_path, monkeypatch):
    lines, files = run_after_test_epoch(tmp_path, monkeypatch, main=True)
    assert lines == ["Iter(test) [3/3]    mIoU: 41.5000  aAcc: 80.2500"]
    assert files == [f"{TIMESTAMP}.json"]
    assert json.loads((tmp_path / files[0]).read_text()) == {"mIoU": 41.5, "aAcc": 80.25}


def test_other_ranks_log_the_line_and_write_nothing(tmp_path, monkeypatch):
    lines, files = run_after_test_epoch(tmp_path, monkeypatch, main=False)
    assert lines == ["Iter(test) [3/3]    mIoU: 41.5000  aAcc: 80.2500"]
    assert files == []


def test_the_hook_keeps_logger_hook_arguments():
    hook = MainProcessLoggerHook(interval=7, log_metric_by_epoch=False)
    assert isinstance(hook, LoggerHook)
    assert (hook.interval, hook.log_metric_by_epoch) == (7, False)


@pytest.mark.parametrize("logger_type", ["LoggerHook", "mmengine.LoggerHook", LoggerHook])
def test_switch_replaces_mmengine_logger_hook_and_keeps_its_arguments(logger_type):
    cfg = Config(dict(default_hooks=dict(logger=dict(type=logger_type, interval=25))))
    assert use_main_process_logger_hook(cfg) is True
    assert cfg.default_hooks.logger == dict(type="MainProcessLoggerHook", interval=25)


@pytest.mark.parametrize(
    "default_hooks",
    [None, dict(timer=dict(type="IterTimerHook")), dict(logger=dict(type="MyLoggerHook"))],
)
def test_switch_leaves_other_configs_as_they_are(default_hooks):
    cfg = Config(dict(default_hooks=default_hooks) if default_hooks is not None else {})
    before = cfg.to_dict()
    assert use_main_process_logger_hook(cfg) is False
    assert cfg.to_dict() == before


def test_tools_test_config_uses_the_main_process_hook():
    spec = importlib.util.spec_from_file_location("tools_test", REPO / "tools" / "test.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    config = REPO / "tests" / "data" / "configs" / "tiny_fpn_r18.py"
    cfg = tool.build_config(tool.parse_args([str(config), "ckpt.pth"]))
    assert cfg.default_hooks.logger == dict(type="MainProcessLoggerHook", interval=1)

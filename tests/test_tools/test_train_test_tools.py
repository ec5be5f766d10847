"""tools/train.py, tools/test.py and the dist_*.sh launchers, run as a user runs them."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from local_http import free_port
from miou_reference import confusion_counts, miou_percent, predicted_classes
from tiny_data import make_tiny_dataset

from mmseg_marginal.engine.checkpoint import load_from_local_safe

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "tests" / "data" / "configs" / "tiny_fpn_r18.py"
RANKS_CONFIG = REPO / "tests" / "data" / "configs" / "tiny_fpn_r18_ranks_marginal.py"


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("tiny"))


def data_options(root: Path) -> list:
    return ["--cfg-options"] + [
        f"{split}_dataloader.dataset.data_root={root}" for split in ("train", "val", "test")
    ]


def run_tool(fresh_python, *args, env_extra=None, check=True):
    """``python tools/x.py args`` (in a fresh process of ``fresh_python``) or ``bash
    tools/x.sh args`` (a subprocess), with ``tests/data`` on the import path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "tests" / "data"), env.get("PYTHONPATH", "")])
    # the launchers call `torchrun` and `python` from PATH: those of this interpreter's venv
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    env.update(env_extra or {})
    cmd = [str(a) for a in args]
    if cmd[0].endswith(".py"):
        proc = fresh_python.run(*cmd, env=env, cwd=REPO, timeout=600)
    else:
        proc = subprocess.run(
            ["bash"] + cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=600
        )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def metrics_of_last_run(work_dir: Path) -> dict:
    runs = sorted(p for p in work_dir.iterdir() if p.is_dir() and (p / f"{p.name}.json").exists())
    assert runs, f"no metrics json in {work_dir}"
    return json.loads((runs[-1] / f"{runs[-1].name}.json").read_text())


def expected_miou(config: Path, checkpoint: Path, root: Path) -> tuple:
    """mIoU (percent, 2 decimals as IoUMetric reports it) of the checkpoint's predictions on
    the val images, computed here from mmseg's inference API and a confusion matrix, and the
    number of classes predicted."""
    from mmengine.config import Config
    from mmseg.apis import inference_model, init_model
    from PIL import Image

    # the model alone: the test hook that the ranks config imports plays no part in inference
    cfg = Config.fromfile(str(config), import_custom_modules=False)
    model = init_model(cfg, str(checkpoint), device="cpu")
    conf = np.zeros((4, 4), np.int64)
    for image in sorted((root / "img_dir" / "val").glob("*.png")):
        pred = inference_model(model, str(image)).pred_sem_seg.data[0].numpy()
        label = np.array(Image.open(root / "ann_dir" / "val" / image.name))
        conf += confusion_counts(label, pred, 4)
    return miou_percent(conf), predicted_classes(conf)


@pytest.mark.slow
def test_train_test_resume_round_trip(data_root, tmp_path, fresh_python):
    work = tmp_path / "work"
    train = REPO / "tools" / "train.py"
    # seeded and without dropout, so that a resumed run can be compared with an uninterrupted one
    seeded = ["randomness.seed=0", "model.decode_head.dropout_ratio=0"]
    run_tool(fresh_python, train, CONFIG, "--work-dir", work, *data_options(data_root), *seeded)
    assert {p.name for p in work.glob("*.pth")} == {"iter_2.pth", "iter_4.pth"}
    first = {name: digest(work / name) for name in ("iter_2.pth", "iter_4.pth")}

    # The checkpoint loads with weights_only=True (torch >= 2.6 default) in tools/test.py.
    test_work = tmp_path / "test"
    run_tool(
        fresh_python,
        REPO / "tools" / "test.py",
        CONFIG,
        work / "iter_4.pth",
        "--work-dir",
        test_work,
        *data_options(data_root),
    )
    metrics = metrics_of_last_run(test_work)
    # (IoUMetric rounds to 2 decimals; the json holds that value as a float32)
    assert metrics["mIoU"] == pytest.approx(
        expected_miou(CONFIG, work / "iter_4.pth", data_root)[0], abs=1e-5
    )

    # A new run in the same work dir is refused and leaves the checkpoints untouched.
    refused = run_tool(
        fresh_python, train, CONFIG, "--work-dir", work, *data_options(data_root), check=False
    )
    assert refused.returncode == 1
    assert "already holds checkpoints" in refused.stderr and str(work) in refused.stderr
    assert {name: digest(work / name) for name in first} == first

    # --resume continues from iteration 4 with the optimizer and message hub restored.
    opts = data_options(data_root) + ["train_cfg.max_iters=6"] + seeded
    resumed = run_tool(fresh_python, train, CONFIG, "--work-dir", work, "--resume", *opts)
    log = resumed.stdout + resumed.stderr
    assert "resumed epoch: 0, iter: 4" in log
    assert "Iter(train) [5/6]" in log and "Iter(train) [1/6]" not in log
    assert (work / "iter_6.pth").exists()
    assert {name: digest(work / name) for name in first} == first
    ckpt = load_from_local_safe(str(work / "iter_6.pth"))
    assert ckpt["meta"]["iter"] == 6

    # ... and ends where an uninterrupted 6-iteration run ends: weights, optimizer state and
    # the message hub's loss history
    straight = tmp_path / "straight"
    run_tool(fresh_python, train, CONFIG, "--work-dir", straight, *opts)
    ref = load_from_local_safe(str(straight / "iter_6.pth"))
    assert ckpt["state_dict"].keys() == ref["state_dict"].keys()
    for name, value in ref["state_dict"].items():
        torch.testing.assert_close(ckpt["state_dict"][name], value, rtol=1e-4, atol=1e-6)
    moments = [(s["momentum_buffer"], r["momentum_buffer"]) for s, r in zip(
        ckpt["optimizer"]["state"].values(), ref["optimizer"]["state"].values())]  # fmt: skip
    assert len(moments) == len(ref["optimizer"]["state"]) > 0
    for got, want in moments:
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
    hub, ref_hub = ckpt["message_hub"]["log_scalars"], ref["message_hub"]["log_scalars"]
    for key in ("train/loss", "train/decode.loss_ce"):
        got, want = hub[key].data[0], ref_hub[key].data[0]
        assert len(got) == len(want) == 6, key
        np.testing.assert_allclose(got, want, rtol=1e-4)
    assert ckpt["message_hub"]["runtime_info"]["iter"] == ref["message_hub"]["runtime_info"]["iter"]


@pytest.mark.parametrize(
    "case, expected",
    [
        ("unknown_loss", "unknown loss type 'NoSuchLoss' at model.decode_head.loss_decode"),
        ("missing_data", "image folder not found: "),
        ("missing_checkpoint", "checkpoint file not found: "),
        ("corrupt_checkpoint", "cannot read checkpoint "),
        ("wrong_classes_checkpoint", "predicts 7 classes"),
    ],
)
def test_bad_input_gives_one_clear_line(case, expected, data_root, tmp_path, fresh_python):
    opts = data_options(data_root)
    if case == "unknown_loss":
        args = [
            REPO / "tools" / "train.py",
            CONFIG,
            "--work-dir",
            tmp_path,
            *opts,
            "model.decode_head.loss_decode.type=NoSuchLoss",
        ]
    elif case == "missing_data":
        args = [
            REPO / "tools" / "train.py",
            CONFIG,
            "--work-dir",
            tmp_path,
            "--cfg-options",
            f"train_dataloader.dataset.data_root={tmp_path / 'absent'}",
        ]
    else:
        ckpt = tmp_path / "model.pth"
        if case == "corrupt_checkpoint":
            ckpt.write_bytes(b"not a checkpoint" * 64)
        elif case == "wrong_classes_checkpoint":
            torch.save(
                {"state_dict": {"decode_head.conv_seg.weight": torch.zeros(7, 32, 1, 1)}}, ckpt
            )
        args = [REPO / "tools" / "test.py", CONFIG, ckpt, "--work-dir", tmp_path, *opts]
    proc = run_tool(fresh_python, *args, check=False)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and expected in errors[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert not list(tmp_path.glob("*.pth")) or case.endswith("checkpoint")


@pytest.mark.slow
def test_dist_train_then_dist_test_on_two_processes(data_root, tmp_path, fresh_python):
    work = tmp_path / "work"
    env = {"PORT": str(free_port())}
    proc = run_tool(
        fresh_python,
        REPO / "tools" / "dist_train.sh",
        RANKS_CONFIG,
        2,
        "--work-dir",
        work,
        *data_options(data_root),
        env_extra=env,
    )
    assert (work / "iter_4.pth").exists()
    assert "SyncBN layer config(s) replaced by BN" in proc.stdout + proc.stderr
    assert "decode.loss_ce_marginal: " in proc.stdout + proc.stderr
    ranks = [json.loads((work / f"rank{r}.json").read_text()) for r in (0, 1)]
    for record in ranks:
        assert record["world_size"] == 2
        assert record["train_iters"] == [0, 1, 2, 3]  # runner.iter before the increment
    # DDP kept the replicas identical; the sampler gave the ranks different images.
    assert ranks[0]["param_sum"] == pytest.approx(ranks[1]["param_sum"], rel=1e-12)
    assert ranks[0]["train_images"] != ranks[1]["train_images"]

    # After 4 iterations the model predicts one class everywhere; a random classifier on its
    # features (no bias) predicts several, so that the metrics below depend on every pixel.
    trained = load_from_local_safe(str(work / "iter_4.pth"))["state_dict"]
    head = trained["decode_head.conv_seg.weight"]
    head.copy_(torch.randn(head.shape, generator=torch.Generator().manual_seed(0)))
    trained["decode_head.conv_seg.bias"].zero_()
    varied = tmp_path / "varied.pth"
    torch.save({"state_dict": trained, "meta": {}}, varied)
    test_work = tmp_path / "test"
    env = {"PORT": str(free_port())}
    run_tool(
        fresh_python,
        REPO / "tools" / "dist_test.sh",
        RANKS_CONFIG,
        varied,
        2,
        "--work-dir",
        test_work,
        *data_options(data_root),
        env_extra=env,
    )
    records = [json.loads((test_work / f"rank{r}.json").read_text()) for r in (0, 1)]
    # every rank logs; only rank 0 writes the metrics JSON that is read below
    assert all(record["logger_hooks"] == ["MainProcessLoggerHook"] for record in records)
    tested = [record["test_images"] for record in records]
    assert all(len(images) == 1 for images in tested)
    assert {Path(p).name for p in tested[0] + tested[1]} == {"000.png", "001.png"}
    metrics = metrics_of_last_run(test_work)
    # the same checkpoint in one process (tools/test.py) gives the same metrics
    single_work = tmp_path / "single"
    run_tool(fresh_python, REPO / "tools" / "test.py", RANKS_CONFIG, varied, "--work-dir",
             single_work, *data_options(data_root))  # fmt: skip
    single = metrics_of_last_run(single_work)
    assert {k: single[k] for k in ("aAcc", "mIoU", "mAcc")} == {
        k: metrics[k] for k in ("aAcc", "mIoU", "mAcc")
    }
    expected, predicted = expected_miou(RANKS_CONFIG, varied, data_root)
    assert predicted >= 2  # several classes predicted
    assert metrics["mIoU"] == pytest.approx(expected, abs=1e-5)

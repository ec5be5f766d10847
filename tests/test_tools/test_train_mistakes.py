"""Four common config mistakes end ``tools/train.py`` with one line before the Runner is built.

Each case writes a config that inherits the tiny test config and makes one mistake, runs
``tools/train.py`` in a fresh process (``fresh_python``) on a generated tiny dataset, and
checks: exit status 1, no traceback, exactly one ``error:`` line that names the config key and
the fix, and no trace of a Runner (no config dump, no work-dir files). ``--debug`` shows the
traceback instead.
"""

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tiny_data import make_tiny_dataset

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "tests" / "data" / "configs" / "tiny_fpn_r18.py"


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    """(good data root, data root whose third training annotation holds the label 7)."""
    good = make_tiny_dataset(tmp_path_factory.mktemp("good"))
    bad = make_tiny_dataset(tmp_path_factory.mktemp("bad"))
    path = bad / "ann_dir" / "train" / "002.png"
    label = np.array(Image.open(path))
    label[5:9, 5:9] = 7
    Image.fromarray(label).save(path)
    return good, bad


def train(fresh_python, tmp_path: Path, config_text: str, *options: str, debug: bool = False):
    """``python tools/train.py CONFIG --work-dir WORK [--cfg-options ...] [--debug]`` in a fresh
    process, from ``tmp_path``."""
    config = tmp_path / "mistake.py"
    config.write_text(f"_base_ = [{str(CONFIG)!r}]\n{config_text}\n")
    work = tmp_path / "work"
    args = [config, "--work-dir", work]
    if options:
        args += ["--cfg-options", *options]
    if debug:
        args.append("--debug")
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = fresh_python.run(REPO / "tools" / "train.py", *args, env=env, cwd=tmp_path, timeout=300)
    return proc, work


def data_config(root: Path) -> str:
    return "\n".join(
        f"{split}_dataloader = dict(dataset=dict(data_root={str(root)!r}))"
        for split in ("train", "val", "test")
    )


def one_error_line(proc, work: Path) -> str:
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr[-3000:]
    # failed before the Runner: no config dump, no environment table, no work-dir files
    assert "Config:" not in proc.stdout + proc.stderr
    assert "Environment info" not in proc.stdout + proc.stderr
    assert not work.exists() or not any(work.rglob("*"))
    return errors[0]


def test_unknown_loss_key_lists_the_accepted_keys_and_the_closest(tmp_path, roots, fresh_python):
    text = data_config(roots[0]) + (
        "\nmodel = dict(decode_head=dict(loss_decode=dict(type='CEMarginalLoss', "
        "penalty='l1', lamda=1.0)))"
    )
    line = one_error_line(*train(fresh_python, tmp_path, text))
    assert line.startswith("error: model.decode_head.loss_decode.lamda: CEMarginalLoss has no key")
    assert "(closest: 'marginal_weight'; accepted keys: " in line  # the paper's lambda
    accepted = line.split("accepted keys: ")[1].split(")")[0].split(", ")
    assert {"penalty", "marginal_weight", "temperature", "loss_weight"} <= set(accepted)
    assert "rename or remove model.decode_head.loss_decode.lamda" in line


def test_bad_loss_value_names_the_loss_and_its_config_path(tmp_path, roots, fresh_python):
    text = data_config(roots[0]) + (
        "\nmodel = dict(decode_head=dict(loss_decode=["
        "dict(type='CrossEntropyLoss', avg_non_ignore=True), "
        "dict(type='LabelMarginalLoss', penalty='kl', temperature=0)]))"
    )
    line = one_error_line(*train(fresh_python, tmp_path, text))
    assert line.startswith(
        "error: model.decode_head.loss_decode[1].temperature=0: LabelMarginalLoss refuses it: "
    )
    assert "temperature must be a finite number > 0" in line
    assert line.endswith("change model.decode_head.loss_decode[1].temperature")


def test_label_outside_the_classes_names_the_file_and_the_fix(tmp_path, roots, fresh_python):
    good, bad = roots
    line = one_error_line(
        *train(
            fresh_python,
            tmp_path,
            data_config(good),
            f"train_dataloader.dataset.data_root={bad}",
        )
    )
    annotation = bad / "ann_dir" / "train" / "002.png"
    assert line.startswith(f"error: annotation {annotation} has label values 7 outside [0, 4)")
    assert "model.decode_head.num_classes=4" in line
    assert "train_dataloader.dataset.reduce_zero_label=False" in line


def test_unused_data_root_override_is_reported_with_the_keys_to_set(tmp_path, roots, fresh_python):
    wrong = tmp_path / "wrong"
    proc, work = train(fresh_python, tmp_path, data_config(roots[0]), f"data_root={wrong}")
    line = one_error_line(proc, work)
    assert line.startswith(f"error: data_root='{wrong}' is set at the top level but no dataloader")
    assert f"train_dataloader.dataset.data_root='{roots[0]}'" in line
    assert line.endswith(
        f"--cfg-options train_dataloader.dataset.data_root={wrong} "
        f"val_dataloader.dataset.data_root={wrong} test_dataloader.dataset.data_root={wrong}"
    )


def test_debug_shows_the_traceback(tmp_path, roots, fresh_python):
    proc, _ = train(fresh_python, tmp_path, data_config(roots[0]), "data_root=/nowhere", debug=True)
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr
    assert "RunCheckError: data_root='/nowhere'" in proc.stderr

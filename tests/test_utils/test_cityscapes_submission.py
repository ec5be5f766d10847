"""Cityscapes submission (mmseg_marginal.utils.cityscapes_submission) on a miniature tree.

``write_submission`` runs a (tiny, randomly initialised) FPN of the Cityscapes config over
``leftImg8bit/test`` and must produce a zip of one labelIds PNG per image, named
``<city>_<seq>_<frame>_leftImg8bit.png``, at the image's size and holding only the 19
evaluated Cityscapes label ids. The PNG writer and packer, fed the ground truth, must score
100% IoU with cityscapesscripts' own pixel-level evaluation, and 0% on an erased class; the
zip that ``write_submission`` writes (val split) must score, class by class, the IoU of the
model's own predictions. The command line (tools/cityscapes_submission.py) is tested in
tests/test_tools.
"""

from __future__ import annotations

import math
import os
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from mini_cityscapes import (
    EVAL_IDS,
    ID_TO_TRAIN,
    make_mini_cityscapes,
    write_fewer_classes_checkpoint,
    write_tiny_checkpoint,
)
from mmengine.config import Config
from mmengine.registry import init_default_scope
from PIL import Image

from mmseg_marginal.utils.cityscapes_submission import (
    check_cityscapes_split,
    pack_submission,
    write_submission,
)

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "configs/fpn_marginal/fpn_r50_4xb2-37.2k_cityscapes-512x1024_ce.py"


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("cityscapes")
    return root, make_mini_cityscapes(root, splits=("val", "test"))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The tiny config and a checkpoint of its randomly initialised model."""
    return write_tiny_checkpoint(tmp_path_factory.mktemp("tiny"), BASE)


def _write(config: Path, checkpoint: Path, out: Path, root: Path, split: str = "test") -> Path:
    """``write_submission`` as the tool calls it: the config file loaded, no options."""
    cfg = Config.fromfile(str(config))
    return Path(write_submission(cfg, str(checkpoint), str(out), str(root), split))


def _submission_names(images: list[Path]) -> set[str]:
    return {p.name for p in images}


@pytest.mark.slow
def test_submission_zip_on_mini_cityscapes(tree, tiny, tmp_path: Path):
    root, images = tree
    config, checkpoint = tiny
    out = tmp_path / "out"
    zip_path = _write(config, checkpoint, out, root)
    assert zip_path == out / "cityscapes_test_submission.zip"
    with zipfile.ZipFile(zip_path) as archive:
        names = set(archive.namelist())
        assert names == _submission_names(images["test"])
        archive.extractall(tmp_path / "unzipped")
    valid = set(EVAL_IDS.tolist())
    for name in names:
        png = Image.open(tmp_path / "unzipped" / name)
        assert png.size == (512, 256)  # (width, height) of the input frame
        ids = np.array(png)
        assert ids.dtype == np.uint8 and ids.shape == (256, 512)
        assert set(np.unique(ids).tolist()) <= valid


def _write_predictions(tmp_path: Path, images: list[Path], train_ids: list[np.ndarray]) -> Path:
    """Write trainId maps through the submission's writer (mmseg's CityscapesMetric) and
    packer."""
    init_default_scope("mmseg")
    from mmseg.registry import METRICS

    png_dir = tmp_path / "labelIds"
    metric = METRICS.build(
        dict(type="CityscapesMetric", output_dir=str(png_dir), format_only=True, keep_results=True)
    )
    for image, pred in zip(images, train_ids):
        sample = dict(img_path=str(image), pred_sem_seg=dict(data=torch.from_numpy(pred)[None]))
        metric.process({}, [sample])
    zip_path = pack_submission(str(png_dir), [str(p) for p in images], str(tmp_path / "s.zip"))
    unzipped = tmp_path / "unzipped"
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(unzipped)
    return unzipped


def _evaluate(pred_dir: Path, gt_files: list[str]) -> dict[str, float]:
    """cityscapesscripts' pixel-level evaluation, as the server runs it; IoU per class name."""
    import cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling as cs_eval

    args = cs_eval.args
    args.predictionPath = str(pred_dir)
    args.predictionWalk = None
    args.evalInstLevelScore = False
    args.evalPixelAccuracy = False
    args.JSONOutput = False
    args.quiet = True
    predictions = [cs_eval.getPrediction(args, gt) for gt in gt_files]
    result = cs_eval.evaluateImgLists(predictions, gt_files, args)
    return result["classScores"]


def _gt(images: list[Path], suffix: str) -> list[str]:
    return [
        str(p).replace("leftImg8bit", "gtFine", 1).replace("_leftImg8bit.png", suffix)
        for p in images
    ]


def test_ground_truth_predictions_score_full_iou(tree, tmp_path: Path):
    root, images = tree
    gt_ids = _gt(images["val"], "_gtFine_labelIds.png")
    train_ids = [ID_TO_TRAIN[np.array(Image.open(f))].astype(np.int64) for f in gt_ids]
    present = set().union(*(np.unique(np.array(Image.open(f))) for f in gt_ids))
    scores = _evaluate(_write_predictions(tmp_path / "exact", images["val"], train_ids), gt_ids)
    evaluated = {name for name, s in scores.items() if not math.isnan(s)}
    from cityscapesscripts.helpers.labels import id2label

    assert evaluated == {id2label[i].name for i in present if i in set(EVAL_IDS.tolist())}
    assert all(scores[name] == 1.0 for name in evaluated)

    # erase 'car' (trainId 13): its pixels predicted as road (trainId 0)
    erased = [np.where(t == 13, 0, t) for t in train_ids]
    scores = _evaluate(_write_predictions(tmp_path / "erased", images["val"], erased), gt_ids)
    assert scores["car"] == 0.0
    assert 0.0 < scores["road"] < 1.0
    for name in evaluated - {"car", "road"}:
        assert scores[name] == 1.0


def test_missing_folder_is_named(tree, tiny, tmp_path: Path):
    root, _ = tree
    config, checkpoint = tiny
    empty = tmp_path / "cityscapes"
    (empty / "leftImg8bit" / "test").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=str(empty / "gtFine" / "test")):
        _write(config, checkpoint, tmp_path / "o", empty)


def test_image_without_annotation_is_named(tree, tmp_path: Path):
    root, images = tree
    broken = tmp_path / "cityscapes"
    for split in ("leftImg8bit", "gtFine"):
        for f in (root / split / "test").rglob("*.png"):
            dst = broken / f.relative_to(root)
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(f.read_bytes())
    victim = Path(_gt(images["test"], "_gtFine_labelTrainIds.png")[1])
    victim = broken / victim.relative_to(root)
    victim.unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(f"annotation not found: {victim};")):
        check_cityscapes_split(str(broken), "test")
    # and the complete tree passes, with one (image, annotation) pair per image
    pairs = check_cityscapes_split(str(root), "test")
    assert [Path(i).name for i, _ in pairs] == sorted(p.name for p in images["test"])
    assert all(os.path.isfile(a) for _, a in pairs)


def test_checkpoint_with_other_class_count_names_both(tree, tiny, tmp_path):
    root, _ = tree
    config, checkpoint = tiny
    other = write_fewer_classes_checkpoint(checkpoint, 11, tmp_path / "camvid11.pth")
    with pytest.raises(ValueError, match=r"predicts 11 classes .* num_classes=19"):
        _write(config, other, tmp_path / "o", root)


def _zip_scores(tmp_path: Path, config: Path, checkpoint: Path, root: Path, images):
    """Write the submission of the val split; score its zip with cityscapesscripts."""
    zip_path = _write(config, checkpoint, tmp_path / "out", root, split="val")
    unzipped = tmp_path / "unzipped"
    with zipfile.ZipFile(zip_path) as archive:
        assert set(archive.namelist()) == _submission_names(images["val"])
        archive.extractall(unzipped)
    return _evaluate(unzipped, _gt(images["val"], "_gtFine_labelIds.png"))


@pytest.mark.slow
def test_zip_scored_by_cityscapesscripts(tree, tiny, tmp_path: Path):
    """The zip write_submission writes, scored by the server's pixel evaluation: (1) a model
    whose head predicts 'car' everywhere scores IoU(car) = car pixels / evaluated pixels, 0 on
    the other present classes; (2) for the random tiny model, every class's IoU equals the IoU
    of the model's own predictions (mmseg's inference API) against the annotations."""
    from cityscapesscripts.helpers.labels import id2label

    root, images = tree
    config, checkpoint = tiny
    # (1) constant prediction: zero head weights, bias favouring trainId 13 (car, labelId 26)
    state = torch.load(checkpoint, weights_only=True)["state_dict"]
    state["decode_head.conv_seg.weight"] = torch.zeros_like(state["decode_head.conv_seg.weight"])
    bias = torch.zeros_like(state["decode_head.conv_seg.bias"])
    bias[13] = 10.0
    state["decode_head.conv_seg.bias"] = bias
    car_only = tmp_path / "car_only.pth"
    torch.save({"state_dict": state, "meta": {}}, car_only)
    scores = _zip_scores(tmp_path / "car", config, car_only, root, images)
    gt = np.stack([np.array(Image.open(f)) for f in _gt(images["val"], "_gtFine_labelIds.png")])
    evaluated = np.isin(gt, EVAL_IDS)
    assert scores["car"] == pytest.approx((gt == 26).sum() / evaluated.sum(), rel=1e-12)
    present = {id2label[i].name for i in np.unique(gt[evaluated]).tolist()}
    assert len(present) > 3
    for name, score in scores.items():
        if name != "car":
            assert score == 0.0 if name in present else math.isnan(score), (name, score)

    # (2) the random model: per-class IoU of the server equals the IoU of the model's own
    # predictions (mmseg's inference API) against the trainId annotations
    scores = _zip_scores(tmp_path / "random", config, checkpoint, root, images)
    from mmseg.apis import inference_model, init_model

    model = init_model(str(config), str(checkpoint), device="cpu")
    conf = np.zeros((19, 19), np.int64)
    for image, ann in zip(images["val"], _gt(images["val"], "_gtFine_labelTrainIds.png")):
        pred = inference_model(model, str(image)).pred_sem_seg.data[0].numpy()
        label = np.array(Image.open(ann)).astype(np.int64)
        keep = label != 255
        conf += np.bincount(19 * label[keep] + pred[keep], minlength=361).reshape(19, 19)
    tp = np.diag(conf)
    union = conf.sum(0) + conf.sum(1) - tp
    train_to_name = {lab.trainId: lab.name for lab in id2label.values() if lab.trainId < 19}
    expected = {train_to_name[c]: tp[c] / union[c] for c in range(19) if union[c] > 0}
    assert len({c for c in range(19) if conf[:, c].sum() > 0}) >= 2  # several classes predicted
    assert {name for name, s in scores.items() if not math.isnan(s)} == set(expected)
    for name, iou in expected.items():
        assert scores[name] == pytest.approx(iou, rel=1e-12, abs=1e-15), name

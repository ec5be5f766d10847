"""Label bookkeeping of the losses (mmseg_marginal.losses.labels) on hand-made label maps."""

import pytest
import torch

from mmseg_marginal.losses.labels import (
    MAX_BINNED_LABEL,
    class_counts,
    count_labels,
    label_masks,
)

# two images of six pixels, K = 3
LABELS = [[0, 2, 2, 255, 1, 2], [1, 1, 255, 255, 0, 0]]


def _counts_by_loop(label, k, ignore_index):
    """Counts, valid counts and bad labels, one pixel at a time."""
    counts, n_valid, n_bad = [], [], 0
    for row in label:
        c = [0] * k
        for v in row:
            if ignore_index is not None and v == ignore_index:
                continue
            if 0 <= v < k:
                c[v] += 1
            else:
                n_bad += 1
        counts.append(c)
        n_valid.append(sum(c))
    return counts, n_valid, n_bad


@pytest.mark.parametrize(
    "rows, ignore_index",
    [
        (LABELS, 255),
        (LABELS, None),  # the 255s are bad labels
        ([[0, -1, 2, -1, 1, 2], [-1, 1, 0, 0, 2, 2]], -1),  # a negative ignored label
        ([[0, -100, 2, -3, 1, 7], [-100, 1, 0, 0, 2, 2]], -100),  # bad labels on both sides
        ([[0, 1, 2, 1, 1, 2], [1, 1, 0, 0, 2, 2]], 1),  # the ignored label is a class
        ([[0, 9, 2, 9, 1, 2], [5, 1, 0, 0, 9, 2]], 9),  # bad 5 between K and the ignored 9
        ([[0, 2, 2, 10**6, 1, 2], [1, 1, 10**6, 4, 0, 0]], 10**6),  # beyond the binned range
        ([[0, 2, 2, -(10**6), 1, 2], [1, 1, -(10**6), 4, 0, 0]], -(10**6)),
    ],
)
def test_count_labels_equals_a_pixel_loop(rows, ignore_index):
    label = torch.tensor(rows)
    counts, n_valid, n_bad = count_labels(label, 3, ignore_index)
    want_counts, want_valid, want_bad = _counts_by_loop(rows, 3, ignore_index)
    assert counts.tolist() == want_counts
    assert n_valid.tolist() == want_valid
    assert int(n_bad) == want_bad
    assert counts.dtype == n_valid.dtype == torch.int64


def test_count_labels_hand_values():
    counts, n_valid, n_bad = count_labels(torch.tensor(LABELS), 3, 255)
    assert counts.tolist() == [[1, 1, 3], [2, 2, 0]]
    assert n_valid.tolist() == [5, 4]
    assert int(n_bad) == 0
    assert abs(-(10**6)) > MAX_BINNED_LABEL  # the far ignored labels above take the other branch


@pytest.mark.parametrize("ignore_index", [255, None, 1, -1])
def test_label_masks_mark_the_class_labels_that_are_not_ignored(ignore_index):
    label = torch.tensor([[0, -1, 2, 255, 1, 3]])
    valid, clean = label_masks(label, 3, ignore_index)
    want = [0 <= v < 3 and v != ignore_index for v in label[0].tolist()]
    assert valid[0].tolist() == want
    assert torch.equal(clean[valid], label[valid])
    assert int(clean.min()) >= 0 and int(clean.max()) <= 2


def test_class_counts_over_the_valid_pixels():
    label = torch.tensor([[0, 2, 2, 0, 1, 2]])
    valid = torch.tensor([[True, True, False, False, True, True]])
    assert class_counts(label, valid, 3).tolist() == [[1, 1, 2]]

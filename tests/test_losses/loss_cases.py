"""Tiny hand-computable inputs shared by the loss tests.

Image 0 (labels ``[0, 0, 1, 255]``) has per-pixel softmax (temperature 1)
``[.5, .5], [.25, .75], [.75, .25]`` on its three valid pixels (the ignored pixel is far from
uniform, so forgetting the mask changes every value); image 1 (labels ``[1, 1, 1, 1]``) is
uniform ``[.5, .5]`` everywhere. For the binary (sigmoid) case the single channel gives
``sigmoid = [.5, .75, .25, ...]``.
"""

import math

import torch

LOG3 = math.log(3.0)


def tiny_batch(dtype: torch.dtype = torch.float64) -> tuple:
    """Logits ``(2, 2, 1, 4)`` and labels ``(2, 1, 4)``."""
    z = torch.zeros(2, 2, 1, 4, dtype=dtype)
    z[0, 1, 0, 1] = LOG3
    z[0, 0, 0, 2] = LOG3
    z[0, 0, 0, 3] = 10.0
    label = torch.tensor([[[0, 0, 1, 255]], [[1, 1, 1, 1]]])
    return z, label


def tiny_binary(dtype: torch.dtype = torch.float64) -> tuple:
    """Logits ``(1, 1, 1, 4)`` (sigmoid .5, .75, .25, ~1) and labels ``(1, 1, 4)``."""
    z = torch.tensor([[[[0.0, LOG3, -LOG3, 10.0]]]], dtype=dtype)
    label = torch.tensor([[[1, 0, 1, 255]]])
    return z, label


def random_batch(
    b: int = 2, k: int = 5, h: int = 4, w: int = 4, present: int = 3, seed: int = 0
) -> tuple:
    """Random float64 logits and labels using only classes ``< present`` (absent classes)
    with about 20% ignored pixels; the last image has a few pixels of class ``present``."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(b, k, h, w, generator=g, dtype=torch.float64) * 2
    label = torch.randint(0, present, (b, h, w), generator=g)
    label[torch.rand(b, h, w, generator=g) < 0.2] = 255
    label[-1, 0, :2] = present
    return z, label

"""Faster loading and printing of configs, for the tests.

For every ``mmseg::`` base, mmengine 0.10.7 re-reads all ~200 metafiles of mmseg
(``_get_cfg_metainfo``). :func:`memoized_metafiles` memoizes that YAML reading (the files are
read-only package data).

``Config.pretty_text`` formats the config's text with yapf, which is slow for a full config;
mmengine's Runner asks for it when it starts (the log), when it dumps the config and at every
checkpoint (the checkpoint's meta), each time for the same text. :func:`memoized_formatting`
formats each distinct text once; the results are the same strings.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import mmengine.config.config as cfg_config
import mmengine.config.utils as cfg_utils
import pytest
from mmengine.config import Config


@contextlib.contextmanager
def memoized_metafiles() -> Iterator[None]:
    """Within the context, mmengine's config lookup reads each ``.yml`` file once."""
    original = cfg_utils.load
    cached = functools.cache(original)

    def load(file: object, *args: object, **kwargs: object) -> object:
        if isinstance(file, str) and file.endswith((".yml", ".yaml")) and not args and not kwargs:
            return cached(file)
        return original(file, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cfg_utils, "load", load)
        yield


@contextlib.contextmanager
def memoized_formatting() -> Iterator[None]:
    """Within the context, mmengine's yapf formatting of a config text runs once per text."""
    original = cfg_config.FormatCode
    cache: dict = {}

    def format_code(text: str, **kwargs: object) -> object:
        key = (text, repr(sorted(kwargs.items())))
        if key not in cache:
            cache[key] = original(text, **kwargs)
        return cache[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cfg_config, "FormatCode", format_code)
        yield


@functools.cache
def read_config(path: str) -> Config:
    """A config without importing its ``custom_imports``, parsed once per test session.

    Callers must not modify the returned config (copy it first).
    """
    return Config.fromfile(path, import_custom_modules=False)

"""Suite-wide settings and checks. Shared data: see ``shared_data.require_shared_data``.

The whole session runs with one torch intra-op thread (:data:`SUITE_THREADS`), set when pytest
starts (in each pytest-xdist worker too: every worker loads this file; the process that starts
the workers runs no test and does not import torch) and restored when it ends: the tests'
tensors are small, and on a shared machine extra threads only contend for the cores. The
processes that tests start (the tools, torchrun ranks, ``mp.spawn`` workers) inherit
``OMP_NUM_THREADS=1`` and ``MKL_NUM_THREADS=1`` from the session's environment for the same
reason; a test that needs another value passes its own.
mmengine's lookup of ``mmseg::`` config bases reads each of mmseg's metafiles once per session,
and its yapf formatting of a config text runs once per text (``config_loading``). On a
pytest-xdist worker the longer files are collected first (see
:func:`pytest_collection_modifyitems`).
"""

from __future__ import annotations

import os

import pytest
from fresh_processes import REPO, FreshProcesses

SUITE_THREADS = 1
SUITE_ENV = {"OMP_NUM_THREADS": str(SUITE_THREADS), "MKL_NUM_THREADS": str(SUITE_THREADS)}
_SAVED = pytest.StashKey[tuple]()
_START_ENV = pytest.StashKey[dict]()


def _starts_workers(config: pytest.Config) -> bool:
    """Whether this process is the controller of pytest-xdist workers (``-n N``, N > 0): it runs
    no test, so it neither imports torch (the workers start sooner) nor sets its threads."""
    return not hasattr(config, "workerinput") and bool(config.getoption("numprocesses", None))


def pytest_configure(config: pytest.Config) -> None:
    env = {name: os.environ.get(name) for name in SUITE_ENV}
    if _starts_workers(config):
        threads = None
    else:
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(SUITE_THREADS)
    config.stash[_SAVED] = (threads, env)
    os.environ.update(SUITE_ENV)  # inherited by the workers and every process a test starts
    config.stash[_START_ENV] = dict(os.environ)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _SAVED not in config.stash:
        return
    threads, env = config.stash[_SAVED]
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    for name, value in env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.hookimpl(tryfirst=True)  # before -m deselects: the order is that of the whole suite
def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    """On a pytest-xdist worker (``make test``: ``--dist loadfile --no-loadscope-reorder``), the
    files that hold tests marked slow come first, then those that start processes (tests that
    use ``fresh_python``), then the rest. The workers take whole files in this order, so that
    the short files fill the end of the run and both workers finish at about the same time.
    Within a file, and in a run without workers, the order is pytest's."""
    if not hasattr(config, "workerinput"):
        return
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    processes = {item.path for item in items if "fresh_python" in item.fixturenames}
    # a stable sort: the files stay contiguous, in collection order within each of the 3 tiers
    items.sort(key=lambda item: (item.path not in slow, item.path not in processes))


@pytest.fixture(autouse=True)
def _torch_thread_count_restored(request: pytest.FixtureRequest):
    """A test that changes torch's intra-op thread count must restore it: every test runs with
    the session's :data:`SUITE_THREADS`."""
    import torch

    before = torch.get_num_threads()
    yield
    after = torch.get_num_threads()
    if after != before:
        pytest.fail(
            f"{request.node.nodeid} changed torch's thread count from {before} to {after} "
            "without restoring it",
            pytrace=False,
        )


@pytest.fixture(scope="session", autouse=True)
def _fast_config_lookup_and_printing():
    from config_loading import memoized_formatting, memoized_metafiles

    with memoized_metafiles(), memoized_formatting():
        yield


@pytest.fixture(scope="session")
def fresh_python(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """Runs ``python script args`` / ``python -c code`` in fresh processes forked from one
    interpreter that has imported torch, mmengine and mmseg (``fresh_processes``). The server
    starts with the environment of the session's start (whatever a test changed since), the
    repository first on ``PYTHONPATH``."""
    env = dict(request.config.stash[_START_ENV])
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    server = FreshProcesses(tmp_path_factory.mktemp("fresh_python"), env=env)
    yield server
    server.close()

import pytest
import torch
from config_loading import memoized_metafiles


@pytest.fixture(scope="session", autouse=True)
def _fast_mmseg_config_lookup():
    with memoized_metafiles():
        yield


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """One intra-op thread: these tiny models run ~8x slower when threads oversubscribe a
    shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

"""Suite-wide checks. Shared data: see ``shared_data.require_shared_data``."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _torch_thread_count_restored(request):
    """A test that changes torch's intra-op thread count must restore it (later tests would
    otherwise run with another count than they were measured with)."""
    before = torch.get_num_threads()
    yield
    after = torch.get_num_threads()
    if after != before:
        pytest.fail(
            f"{request.node.nodeid} changed torch's thread count from {before} to {after} "
            "without restoring it",
            pytrace=False,
        )

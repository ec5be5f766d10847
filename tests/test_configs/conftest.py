import pytest
from config_loading import memoized_metafiles


@pytest.fixture(scope="session", autouse=True)
def _fast_mmseg_config_lookup():
    with memoized_metafiles():
        yield

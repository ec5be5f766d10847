"""The shared-data helper: skip with the missing path outside CI, fail with it under CI=true."""

import pytest
from shared_data import require_shared_data


@pytest.mark.parametrize("ci", ["true", "1", "TRUE"])
def test_missing_data_fails_under_ci(tmp_path, monkeypatch, ci):
    monkeypatch.setenv("SHARED_DATA", str(tmp_path))
    monkeypatch.setenv("CI", ci)
    with pytest.raises(
        pytest.fail.Exception, match=f"CI=true and camvid data not found at {tmp_path}"
    ):
        require_shared_data("camvid")


@pytest.mark.parametrize("ci", [None, "", "false", "0"])
def test_missing_data_skips_outside_ci(tmp_path, monkeypatch, ci):
    monkeypatch.setenv("SHARED_DATA", str(tmp_path))
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    (tmp_path / "camvid").mkdir()
    with pytest.raises(pytest.skip.Exception, match=str(tmp_path / "camvid" / "trainannot")):
        require_shared_data("camvid", "trainannot")


def test_present_data_is_returned(tmp_path, monkeypatch):
    monkeypatch.setenv("SHARED_DATA", str(tmp_path))
    monkeypatch.setenv("CI", "true")
    (tmp_path / "drive" / "training").mkdir(parents=True)
    assert require_shared_data("drive", "training") == tmp_path / "drive"

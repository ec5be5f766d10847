"""tools/analysis/results_table.py from the command line (the computation is tested in
tests/test_analysis/test_results_table.py)."""

import numpy as np
from analysis_data import ONE_WRONG, PERFECT, fake_work_dir, run_analysis_tool
from PIL import Image


def test_runs_as_a_script(tmp_path, fresh_python):
    a = fake_work_dir(tmp_path, "a", [PERFECT])
    b = fake_work_dir(tmp_path, "b", [ONE_WRONG], with_prop=False)
    out_md, out_png = tmp_path / "out" / "t.md", tmp_path / "out" / "t.png"
    args = [a, b, "--names", "CE"]
    proc = run_analysis_tool(
        fresh_python,
        "results_table",
        *args,
        "Ours(L1)",
        "--out-md",
        str(out_md),
        "--out-png",
        str(out_png),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == out_md.read_text()
    lines = proc.stdout.splitlines()
    assert lines[0] == "| Method | road | car | sky | mIoU |"
    assert lines[2:5] == [
        "| mRegProp | 25.0 | 25.0 | 37.5 | - |",
        "| CE | 100.0 | 100.0 | 100.0 | 100.0 |",
        "| Ours(L1) | 66.7 | 50.0 | 100.0 | 72.2 |",
    ]
    with Image.open(out_png) as image:
        assert image.format == "PNG" and image.size[0] > 200
        assert np.asarray(image.convert("L")).std() > 5
    # an error is one line on stderr
    proc = run_analysis_tool(fresh_python, "results_table", *args)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "error: 1 names for 2 work dirs"


def test_default_is_the_best_evaluation(tmp_path, fresh_python):
    """Without --select the script reads each work dir's best evaluation (Table 4's best
    epoch); --select last reads the newest log's last one."""
    fake_work_dir(tmp_path, "a", [PERFECT], timestamp="20260101_000000")
    fake_work_dir(tmp_path, "a2", [ONE_WRONG], timestamp="20260102_000000")
    (tmp_path / "a2" / "20260102_000000").rename(tmp_path / "a" / "20260102_000000")
    a = str(tmp_path / "a")
    best = run_analysis_tool(fresh_python, "results_table", a, "--names", "CE")
    last = run_analysis_tool(fresh_python, "results_table", a, "--names", "CE", "--select", "last")
    assert best.returncode == 0 and last.returncode == 0, best.stderr + last.stderr
    assert "| CE | 100.0 | 100.0 | 100.0 | 100.0 |" in best.stdout.splitlines()
    assert "| CE | 66.7 | 50.0 | 100.0 | 72.2 |" in last.stdout.splitlines()

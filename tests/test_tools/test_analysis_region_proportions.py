"""tools/analysis/region_proportions.py from the command line (the computation is tested in
tests/test_analysis/test_region_proportions.py)."""

from analysis_data import hand_dataset_config, run_analysis_tool


def test_runs_as_a_script(tmp_path, fresh_python):
    config = hand_dataset_config(tmp_path)
    out = tmp_path / "tables" / "t.md"
    proc = run_analysis_tool(fresh_python, "region_proportions", config, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == out.read_text()
    assert "| a | 25.00 | 25.00 | 31.25 | 28.57 |" in proc.stdout.splitlines()
    assert "| sum of classes | 87.50 | 87.50 | 100.00 | 100.00 |" in proc.stdout.splitlines()
    # an error is one line on stderr
    proc = run_analysis_tool(fresh_python, "region_proportions", config, "--ignore-index", "0")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "ann/0.png: the ground truth holds label 255" in last

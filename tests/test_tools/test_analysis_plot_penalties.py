"""tools/analysis/plot_penalties.py from the command line (the curves are tested in
tests/test_analysis/test_penalty_curves.py)."""

import numpy as np
from analysis_data import run_analysis_tool
from PIL import Image


def test_runs_as_a_script(tmp_path, fresh_python):
    out = tmp_path / "fig" / "pen.png"
    proc = run_analysis_tool(
        fresh_python, "plot_penalties", "--gt-prop", "0.1", "--out", str(out), "--num", "201"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "DB1 = log(p1 + y1)         minimum at p1 = 0.000",
        "DB = sum_k log(pk + yk)    minimum at p1 = 0.000",
        "KL(y || p)                 minimum at p1 = 0.100",
        "L1 = |y1 - p1|             minimum at p1 = 0.100",
        f"wrote {out}",
    ]
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size[0] > 300 and image.size[1] > 200
        assert np.asarray(image.convert("L")).std() > 5  # something was drawn
    # an error is one line on stderr
    proc = run_analysis_tool(fresh_python, "plot_penalties", "--gt-prop", "1.5")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: the ground-truth proportion must be in (0, 1), got 1.5"
    )

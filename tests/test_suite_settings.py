"""The suite's own settings: one torch thread, the thread-count guard, fresh processes."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch

pytest_plugins = ["pytester"]


def test_session_runs_with_one_thread_and_passes_it_on():
    assert torch.get_num_threads() == 1
    assert os.environ["OMP_NUM_THREADS"] == "1" and os.environ["MKL_NUM_THREADS"] == "1"
    code = "import os; print(os.environ['OMP_NUM_THREADS'], os.environ['MKL_NUM_THREADS'])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.split() == ["1", "1"]


def test_a_test_that_leaves_another_thread_count_fails(pytester):
    """The suite's conftest in a session of its own: the test that leaves 2 threads errors,
    naming itself and both counts; the one that restores passes."""
    pytester.makeconftest(open(os.path.join(os.path.dirname(__file__), "conftest.py")).read())
    pytester.makepyfile(
        test_threads=textwrap.dedent(
            """
            import torch

            def test_restores():
                torch.set_num_threads(2)
                torch.set_num_threads(1)

            def test_leaves_two():
                torch.set_num_threads(2)
            """
        )
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        ["*test_leaves_two changed torch's thread count from 1 to 2 without restoring it*"]
    )
    assert torch.get_num_threads() == 1  # the inner session's end restored its start count


def test_fresh_process_exit_status_output_and_state(fresh_python, tmp_path):
    code = textwrap.dedent(
        """
        import os, sys
        assert "mmseg_marginal" not in sys.modules
        import torch
        import mmseg_marginal
        print(sys.argv[1:], os.getcwd(), os.environ["SOME_VAR"], torch.get_num_threads())
        print(sys.stdin.read() == "", file=sys.stderr)
        sys.exit(int(sys.argv[1]))
        """
    )
    env = dict(os.environ, SOME_VAR="x")
    out = fresh_python.run(None, 3, "a b", code=code, env=env, cwd=tmp_path)
    assert out.returncode == 3
    assert out.stdout.strip() == f"['3', 'a b'] {tmp_path} x 1"
    assert out.stderr.strip() == "True"

    failed = fresh_python.run(code="raise ValueError('bad value 7')")
    assert failed.returncode == 1 and failed.stdout == ""
    assert failed.stderr.startswith("Traceback (most recent call last):")
    assert failed.stderr.strip().splitlines()[-1] == "ValueError: bad value 7"
    message = fresh_python.run(code="import sys; sys.exit('error: one line')")
    assert (message.returncode, message.stderr) == (1, "error: one line\n")


def test_fresh_process_runs_a_script_as_python_does(fresh_python, tmp_path):
    (tmp_path / "helper_module.py").write_text("VALUE = 5\n")
    script = tmp_path / "tool.py"
    script.write_text(
        "import sys\nimport helper_module\n"
        "print(sys.argv, sys.path[0], helper_module.VALUE, __name__)\n"
    )
    out = fresh_python.run(script, "--flag")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"[{str(script)!r}, '--flag'] {tmp_path} 5 __main__"


def test_fresh_process_past_its_timeout_is_killed(fresh_python):
    with pytest.raises(subprocess.TimeoutExpired):
        fresh_python.run(code="import time; time.sleep(60)", timeout=1)
    assert fresh_python.run(code="print('next')").stdout == "next\n"

"""One run of a comparison in its own process (internal to :func:`run_comparison`).

``python -m mmseg_marginal.experiments.worker JOB RESULT``: ``JOB`` is the job JSON that
:func:`~mmseg_marginal.experiments.run_comparison` writes, ``RESULT`` the result JSON to write.
"""

import json
import sys

from .run import train_and_evaluate, write_result


def main(argv: list) -> int:
    if len(argv) != 2:
        print(
            "mmseg_marginal.experiments.worker is internal to run_comparison; the command "
            "lines are `python -m mmseg_marginal compare` and `python -m mmseg_marginal demo`",
            file=sys.stderr,
        )
        return 2
    with open(argv[0]) as f:
        job = json.load(f)
    write_result(train_and_evaluate(job), argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

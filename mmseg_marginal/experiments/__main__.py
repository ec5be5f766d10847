"""``python -m mmseg_marginal.experiments run JOB RESULT``: one run of a comparison.

Used by :func:`mmseg_marginal.experiments.run_comparison` to train each run in its own
process; ``JOB`` is the job JSON it writes, ``RESULT`` the result JSON to write.
"""

import json
import sys

from .run import train_and_evaluate, write_result


def main(argv: list) -> int:
    if len(argv) != 3 or argv[0] != "run":
        print("usage: python -m mmseg_marginal.experiments run JOB.json RESULT.json")
        return 2
    with open(argv[1]) as f:
        job = json.load(f)
    write_result(train_and_evaluate(job), argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

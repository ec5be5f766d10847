"""``python -m mmseg_marginal.experiments``: points to the command line of the comparisons."""

import sys

if __name__ == "__main__":
    print(
        "mmseg_marginal.experiments is the library behind `python -m mmseg_marginal compare` "
        "(train, test and tabulate a list of losses) and `python -m mmseg_marginal demo`; "
        "run one of those (add -h for their flags)",
        file=sys.stderr,
    )
    sys.exit(2)

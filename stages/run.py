"""Entry point of the dvc stages: `python stages/run.py STAGE DATASET` runs one stage of one dataset with the
settings of params.yaml (stages: convert frames detect segment crop; see src/posebank/pipeline.py)."""

import sys

from posebank.cli import main

if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python stages/run.py STAGE DATASET")
    sys.exit(main(["stage", sys.argv[1], sys.argv[2], "--params", "params.yaml"]))

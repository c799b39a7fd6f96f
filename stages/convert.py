"""dvc stage convert@<dataset>: raw tree -> data/cache/<dataset>.h5 (settings from params.yaml)."""

import sys

from posebank.cli import main

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python stages/convert.py DATASET")
    name = sys.argv[1]
    sys.exit(main(["convert", name, "--params", "params.yaml", "--out", f"data/cache/{name}.h5"]))

"""dvc stage subset@<subset>: `python stages/subset.py SUBSET`.

The stage's code is src/posebank/pipeline/subset.py.
"""

import sys

from posebank.pipeline.subset import main

if __name__ == "__main__":
    sys.exit(main())

"""dvc stage segment@<dataset>: `python stages/segment.py DATASET`.

The stage's code is src/posebank/pipeline/segment.py.
"""

import sys

from posebank.pipeline.segment import main

if __name__ == "__main__":
    sys.exit(main())

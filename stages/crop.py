"""dvc stage crop@<dataset>: `python stages/crop.py DATASET`.

The stage's code is src/posebank/pipeline/crop.py.
"""

import sys

from posebank.pipeline.crop import main

if __name__ == "__main__":
    sys.exit(main())

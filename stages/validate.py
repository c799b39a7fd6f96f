"""dvc stage validate@<dataset>: `python stages/validate.py DATASET`.

The stage's code is src/posebank/pipeline/validate.py.
"""

import sys

from posebank.pipeline.validate import main

if __name__ == "__main__":
    sys.exit(main())

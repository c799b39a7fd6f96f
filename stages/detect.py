"""dvc stage detect@<dataset>: `python stages/detect.py DATASET`.

The stage's code is src/posebank/pipeline/detect.py.
"""

import sys

from posebank.pipeline.detect import main

if __name__ == "__main__":
    sys.exit(main())

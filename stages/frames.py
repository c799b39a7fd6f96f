"""dvc stage frames@<dataset>: `python stages/frames.py DATASET`.

The stage's code is src/posebank/pipeline/frames.py.
"""

import sys

from posebank.pipeline.frames import main

if __name__ == "__main__":
    sys.exit(main())

"""dvc stage convert@<dataset>: `python stages/convert.py DATASET`.

The stage's code is src/posebank/pipeline/convert.py.
"""

import sys

from posebank.pipeline.convert import main

if __name__ == "__main__":
    sys.exit(main())

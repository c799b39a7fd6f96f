"""dvc stage fetch@<dataset>: `python stages/fetch.py DATASET`.

The stage's code is src/posebank/pipeline/fetch.py.
"""

import sys

from posebank.pipeline.fetch import main

if __name__ == "__main__":
    sys.exit(main())

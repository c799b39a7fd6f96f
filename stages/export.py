"""dvc stage export@<export>: `python stages/export.py EXPORT` (a dataset's or subset's export).

The stage's code is src/posebank/pipeline/export.py.
"""

import sys

from posebank.pipeline.export import main

if __name__ == "__main__":
    sys.exit(main())

"""dvc stage export_merge@<export>: `python stages/export_merge.py EXPORT` (a merge's export).

The stage's code is src/posebank/pipeline/export.py.
"""

import sys

from posebank.pipeline.export import main

if __name__ == "__main__":
    sys.exit(main())

"""dvc stage merge@<merge>: `python stages/merge.py MERGE`.

The stage's code is src/posebank/pipeline/merge.py.
"""

import sys

from posebank.pipeline.merge import main

if __name__ == "__main__":
    sys.exit(main())

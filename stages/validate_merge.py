"""dvc stage validate_merge@<merge>: `python stages/validate_merge.py MERGE`.

The stage's code is src/posebank/pipeline/validate_merge.py.
"""

import sys

from posebank.pipeline.validate_merge import main

if __name__ == "__main__":
    sys.exit(main())

"""dvc stage merge_sources: `python stages/merge_sources.py` (the source cache digests of every merge).

The stage's code is src/posebank/pipeline/merge_sources.py.
"""

import sys

from posebank.pipeline.merge_sources import main

if __name__ == "__main__":
    sys.exit(main())

"""dvc stage refit_config: `python stages/refit_config.py` (ReFit's mixes and data_config.py over the exports).

The stage's code is src/posebank/pipeline/export.py.
"""

import sys

from posebank.pipeline.export import refit_config_main

if __name__ == "__main__":
    sys.exit(refit_config_main())

"""One Airflow DAG per merge of params.yaml's ``merges:`` (``posebank_merge_<merge>``), scheduled on the cache
Assets of its sources: merge_sources, merge, validate_merge, the merge's exports, then ``dvc commit``, ``dvc push``
and a git commit of dvc.lock (pool ``dvc``). Built by posebank_dags._build; docs/airflow.md."""

import os
import sys

# Airflow puts its configured DAG folder on sys.path; a DagBag of another folder does not
if os.path.dirname(os.path.abspath(__file__)) not in sys.path:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from posebank_dags._build import merge_dags  # noqa: E402

globals().update(merge_dags())

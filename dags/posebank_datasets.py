"""One Airflow DAG per dataset of params.yaml's ``datasets:`` (``posebank_<dataset>``): the seven stages in order
(detect and segment in pool ``gpu``), then ``dvc commit`` (pool ``dvc``) publishing the cache's Asset.
Built by posebank_dags._build; docs/airflow.md."""

import os
import sys

# Airflow puts its configured DAG folder on sys.path; a DagBag of another folder does not
if os.path.dirname(os.path.abspath(__file__)) not in sys.path:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from posebank_dags._build import dataset_dags  # noqa: E402

globals().update(dataset_dags())

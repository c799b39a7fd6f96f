"""Environment for running Airflow against this repository's DAG folder: a private AIRFLOW_HOME (sqlite metadata
DB), no example DAGs, the posebank pools. Airflow reads its configuration when it is first imported, so these
variables are set before any ``import airflow`` (in this process, or in the subprocesses that run DAGs)."""

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO

DAGS = REPO / "dags"
BIN = Path(sys.executable).parent


def airflow_env(home: Path, workspace: Path | None = None) -> dict[str, str]:
    """The variables that point Airflow at ``home`` and the DAGs at ``workspace`` (default: this repository)."""
    env = {"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
           "AIRFLOW__CORE__EXECUTOR": "LocalExecutor", "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
           "PATH": f"{BIN}:{os.environ['PATH']}", "GX_ANALYTICS_ENABLED": "false", "DVC_NO_ANALYTICS": "1"}
    if workspace is not None:
        env["POSEBANK_WORKSPACE"] = str(workspace)
    return env


def prepare_home(home: Path) -> dict[str, str]:
    """A migrated metadata DB in ``home`` with the pools ``gpu`` and ``dvc`` (one slot each)."""
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **airflow_env(home)}
    pools = home / "pools.json"
    pools.write_text(json.dumps({"gpu": {"slots": 1, "description": "posebank GPU stages"},
                                 "dvc": {"slots": 1, "description": "posebank DVC lock"}}))
    for cmd in (["db", "migrate"], ["pools", "import", str(pools)]):
        r = subprocess.run([str(BIN / "airflow"), *cmd], env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"airflow {' '.join(cmd)} failed:\n{r.stdout}\n{r.stderr}"
    return env

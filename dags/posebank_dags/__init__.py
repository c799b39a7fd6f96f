"""Shared code of posebank's Airflow DAG files (dags/*.py): the DAGs built from params.yaml (:mod:`._build`)."""

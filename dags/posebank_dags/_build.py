"""posebank's Airflow DAGs, built from params.yaml: one per dataset and one per merge.

The DAGs only orchestrate. Every task runs a stage entry script (``python stages/<stage>.py NAME``), ``dvc``,
``git`` or the ``posebank`` command in the DVC workspace; no data logic lives here. The stage scripts take no DVC
lock (they are resumable and write atomically), so the runs of several DAGs build in parallel; only the tasks
that write DVC's files (``dvc commit``, ``posebank push``) and git's (the dvc.lock commit, the release tag) take the
repository lock, and those run in the one-slot pool ``dvc`` (and wait for DVC's lock rather than fail,
``--wait-for-lock``). ``detect`` and ``segment`` run in the pool ``gpu``.

Top-level cost: this module imports only the standard library, ``yaml`` and ``airflow.sdk``; building the DAGs
reads params.yaml once and touches no other file (the workspace's paths are only joined, never checked).

The workspace is ``$POSEBANK_WORKSPACE`` or else the repository holding this folder (``dags/..``).
"""

from __future__ import annotations

import datetime
import os
import shlex
import sys
from pathlib import Path

import yaml
from airflow.sdk import DAG, Asset, task

# the stages of one dataset in run order (posebank.pipeline.STAGES; this module must not import posebank)
STAGES = ("fetch", "convert", "frames", "detect", "segment", "crop", "validate")
GPU_STAGES = ("detect", "segment")
VALIDATION_STAGES = ("validate", "validate_merge")  # a failed validation is not transient: no retries
GPU_POOL, DVC_POOL = "gpu", "dvc"
# params.yaml's airflow: section when it is absent (posebank.core.settings.AirflowParams holds the same defaults)
DEFAULTS = {"schedule": "@weekly", "gpu_slots": 1, "gpu_shards": 1, "gpu_queue": "default", "dvc_slots": 1,
            "retries": 2, "retry_delay_s": 60.0,
            "retry_exponential_backoff": 2.0, "max_retry_delay_s": 1800.0, "tags": ["posebank"], "release": False}
START = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)  # catchup is off: only the next run counts
CACHE_DEFAULT = "data/cache"


def workspace() -> Path:
    """The DVC workspace the tasks run in: ``$POSEBANK_WORKSPACE``, else the repository holding ``dags/``."""
    env = os.environ.get("POSEBANK_WORKSPACE")
    return Path(env).resolve() if env else Path(__file__).resolve().parents[2]


def load_params(root: Path) -> dict:
    """The workspace's params.yaml as a mapping (the one file read while parsing)."""
    with open(root / "params.yaml") as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{root / 'params.yaml'}: must hold a mapping of sections")
    return data


def settings(params: dict) -> dict:
    """The ``airflow:`` section over :data:`DEFAULTS` (``posebank params`` checks the values)."""
    return {**DEFAULTS, **(params.get("airflow") or {})}


def default_args(s: dict) -> dict:
    """Every task's retry policy: ``retries`` retries, the first after ``retry_delay_s``, each next one
    ``retry_exponential_backoff`` times longer (0: constant), at most ``max_retry_delay_s``."""
    return {"retries": int(s["retries"]), "retry_delay": datetime.timedelta(seconds=float(s["retry_delay_s"])),
            "retry_exponential_backoff": float(s["retry_exponential_backoff"]),
            "max_retry_delay": datetime.timedelta(seconds=float(s["max_retry_delay_s"]))}


def pools(params: dict) -> dict[str, tuple[int, str]]:
    """The pools the DAGs use: name -> (slots, description)."""
    s = settings(params)
    return {GPU_POOL: (int(s["gpu_slots"]), "posebank detect and segment tasks (GPU work)"),
            DVC_POOL: (int(s["dvc_slots"]), "posebank tasks taking the DVC repository lock (commit, push, git)")}


def cache_asset(root: Path, params: dict, dataset: str) -> Asset:
    """The Asset of a dataset's validated cache folder, ``file://<workspace>/<pipeline.cache>/<dataset>``."""
    cache = Path((params.get("pipeline") or {}).get("cache") or CACHE_DEFAULT)
    path = cache if cache.is_absolute() else root / cache
    return Asset(name=f"posebank-cache-{dataset}", uri=(path / dataset).as_uri(), group="posebank")


def merge_asset(root: Path, params: dict, merge: str) -> Asset:
    """The Asset of a merge recorded in dvc.lock and pushed, ``file://<workspace>/<pipeline.merged>/<m>.h5``."""
    merged = Path((params.get("pipeline") or {}).get("merged") or "data/merged")
    path = merged if merged.is_absolute() else root / merged
    return Asset(name=f"posebank-merge-{merge}", uri=(path / f"{merge}.h5").as_uri(), group="posebank")


def _python() -> str:
    return shlex.quote(sys.executable)


def stage_command(stage: str, name: str | None = None, shard: str | None = None) -> str:
    """The stage's own command (dvc.yaml's ``cmd``), with this environment's interpreter; ``shard``: ``"I/N"``,
    one part of a sharded stage's plan."""
    return (f"{_python()} stages/{stage}.py" + (f" {shlex.quote(name)}" if name else "")
            + (f" --shard {shard}" if shard else ""))


def dvc_command(*args: str) -> str:
    """``dvc`` of this environment, waiting for the repository lock when another DVC process holds it."""
    return f"{_python()} -m dvc --wait-for-lock " + " ".join(shlex.quote(a) for a in args)


def posebank_command(*args: str) -> str:
    return shlex.quote(str(Path(sys.executable).parent / "posebank")) + " " + " ".join(shlex.quote(a) for a in args)


def git_record_command(message: str) -> str:
    """Commit dvc.lock (and the DVC metrics and quarantine lists committed with it, and what dvc staged) when it
    changed."""
    return ("git add dvc.lock && "
            "{ git add reports/validation reports/stats reports/quarantine 2>/dev/null || true; } && "
            f"if git diff --cached --quiet; then echo 'dvc.lock unchanged: nothing to commit'; "
            f"else git -c user.name=\"${{GIT_AUTHOR_NAME:-posebank-airflow}}\" "
            f"-c user.email=\"${{GIT_AUTHOR_EMAIL:-posebank-airflow@localhost}}\" commit -q -m {shlex.quote(message)}"
            " && git log -1 --format='recorded %h %s'; fi")


def _bash(task_id: str, command: str, root: Path, **kwargs):
    """A task running ``command`` with bash in the workspace (its output is the task's log)."""

    def returns_command() -> str:
        return command

    returns_command.__name__ = task_id
    returns_command.__doc__ = f"``{command}`` in the workspace"
    return task.bash(task_id=task_id, cwd=str(root), doc_md=f"`{command}`", **kwargs)(returns_command)()


def _mapped_bash(task_id: str, stage: str, dataset: str, parts: int, root: Path, **kwargs):
    """``parts`` task instances of one task (dynamic task mapping over ``shard`` = 0 ... parts-1), each running the
    stage on its part of the shard plan, ``--shard <shard>/<parts>``."""

    def shard_command(shard: int) -> str:
        return stage_command(stage, dataset, f"{shard}/{parts}")

    shard_command.__name__ = task_id
    shard_command.__doc__ = f"``{stage_command(stage, dataset, f'<shard>/{parts}')}`` in the workspace"
    return task.bash(task_id=task_id, cwd=str(root), doc_md=f"`{stage_command(stage, dataset, f'I/{parts}')}`",
                     map_index_template=f"shard {{{{ task.op_kwargs['shard'] }}}}/{parts}",
                     **kwargs)(shard_command).expand(shard=list(range(parts)))


def dataset_dag(root: Path, params: dict, dataset: str) -> DAG:
    """``posebank_<dataset>``: its seven stages in order, then ``dvc_commit`` records them in dvc.lock and
    publishes the dataset's cache Asset. With ``airflow.gpu_shards`` N > 1, ``detect`` and ``segment`` are each
    preceded by ``<stage>_shards``, N mapped task instances building one part of the plan each (``--shard i/N``,
    on the GPU workers), and the ``<stage>`` task after them assembles (checks every shard, builds any missing)."""
    s = settings(params)
    parts = int(s["gpu_shards"])
    with DAG(dag_id=f"posebank_{dataset}", schedule=s["schedule"], start_date=START, catchup=False,
             max_active_runs=1, tags=[*s["tags"], "dataset"], default_args=default_args(s),
             doc_md=f"Builds the **{dataset}** cache: `python stages/<stage>.py {dataset}` for each stage in "
                    f"the workspace `{root}`, then `dvc commit` of the seven stages (pool `{DVC_POOL}`); "
                    f"publishes `posebank-cache-{dataset}`.") as d:
        previous = None
        for stage in STAGES:
            extra: dict = {"pool": GPU_POOL, "queue": s["gpu_queue"]} if stage in GPU_STAGES else {}
            if stage in VALIDATION_STAGES:
                extra["retries"] = 0
            if stage in GPU_STAGES and parts > 1:
                mapped = _mapped_bash(f"{stage}_shards", stage, dataset, parts, root, **extra)
                previous >> mapped
                previous = mapped
            t = _bash(stage, stage_command(stage, dataset), root, **extra)
            if previous is not None:
                previous >> t
            previous = t
        commit = _bash("dvc_commit", dvc_command("commit", "-f", *(f"{st}@{dataset}" for st in STAGES)), root,
                       pool=DVC_POOL, outlets=[cache_asset(root, params, dataset)])
        previous >> commit
    return d


def merge_sources(params: dict, merge: str) -> list[str]:
    """The sources of ``merges.<merge>`` that are datasets of params.yaml (the others publish no Asset)."""
    datasets = params.get("datasets") or {}
    entry = (params.get("merges") or {}).get(merge) or {}
    return [src["dataset"] for src in entry.get("sources") or [] if isinstance(src, dict)
            and src.get("dataset") in datasets]


def merge_exports(params: dict, merge: str) -> list[str]:
    """The ``merge_exports:`` entries exporting ``merge``."""
    return [name for name, e in (params.get("merge_exports") or {}).items() if (e or {}).get("source") == merge]


def merge_dag(root: Path, params: dict, merge: str) -> DAG:
    """``posebank_merge_<merge>``: scheduled on its sources' cache Assets; the source digests, the merge, its
    validation and exports, then dvc.lock records them, the remote gets them, git records dvc.lock (and
    ``posebank release`` tags a version when ``airflow.release`` is true)."""
    s = settings(params)
    sources = merge_sources(params, merge)
    exports = merge_exports(params, merge)
    schedule = [cache_asset(root, params, ds) for ds in sources] or None
    with DAG(dag_id=f"posebank_merge_{merge}", schedule=schedule, start_date=START, catchup=False,
             max_active_runs=1, tags=[*s["tags"], "merge"], default_args=default_args(s),
             doc_md=f"Builds the merge **{merge}** when the caches of {', '.join(sources) or 'no source'} are "
                    f"updated: merge_sources, merge, validate_merge, exports ({', '.join(exports) or 'none'}), "
                    "then `dvc commit`, `posebank push` and a git commit of dvc.lock (pool "
                    f"`{DVC_POOL}`).") as d:
        chain = [_bash("merge_sources", stage_command("merge_sources"), root),
                 _bash("merge", stage_command("merge", merge), root),
                 _bash("validate_merge", stage_command("validate_merge", merge), root, retries=0)]
        chain += [_bash(f"export_{e}", stage_command("export_merge", e), root) for e in exports]
        stages = ["merge_sources", f"merge@{merge}", f"validate_merge@{merge}", *(f"export_merge@{e}" for e in exports)]
        chain.append(_bash("dvc_commit", dvc_command("commit", "-f", *stages), root, pool=DVC_POOL))
        pushed = [f"merge@{merge}", *(f"crop@{ds}" for ds in sources), *(f"export_merge@{e}" for e in exports)]
        chain.append(_bash("push", posebank_command("push", "--wait-for-lock", *pushed), root, pool=DVC_POOL))
        chain.append(_bash("record", git_record_command(f"{merge}: dvc.lock after posebank_merge_{merge}"), root,
                           pool=DVC_POOL, outlets=[merge_asset(root, params, merge)]))
        if s["release"]:
            chain.append(_bash("release", posebank_command("release", merge), root, pool=DVC_POOL))
        for a, b in zip(chain, chain[1:]):
            a >> b
    return d


def dataset_dags() -> dict[str, DAG]:
    """Every dataset DAG of the workspace's params.yaml, by dag_id."""
    root = workspace()
    params = load_params(root)
    return {d.dag_id: d for d in (dataset_dag(root, params, ds) for ds in params.get("datasets") or {})}


def merge_dags() -> dict[str, DAG]:
    """Every merge DAG of the workspace's params.yaml, by dag_id."""
    root = workspace()
    params = load_params(root)
    return {d.dag_id: d for d in (merge_dag(root, params, m) for m in params.get("merges") or {})}

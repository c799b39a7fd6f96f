"""Benchmark of DVC's bookkeeping on the whole pipeline: the time of a no-op ``dvc repro`` with every stage built,
and, after one dataset's parameter changes, which stages rerun and how long that takes.

Usage::

    .venv/bin/python bench/repro.py [--workspace DIR] [--dataset h36m] [--runs 5] [--quick]
                                    [--out bench/results/repro.json] [--allow-dirty]

The workspace is the demo's, ``build/demo`` (``make demo``: every dataset's fixture, every merge, subset and
export). It must be fully built: present, with a ``dvc.lock``, its tracked files equal to this checkout's (the demo
copies them) and ``dvc status`` clean; otherwise the benchmark runs ``python scripts/demo.py`` first (recorded
under ``setup``). ``--workspace DIR`` takes another DVC workspace instead (a stale one gets a ``dvc repro`` first).
``--quick`` builds a small scratch workspace instead (a copy of the tracked files with Human3.6M's fixture only:
one training and one test subject, ``segment.backend: none``, no merges, subsets or exports), measures it with two
runs and deletes it: a check that the script runs, which needs ``--out``.

Measured in the workspace, each command a subprocess timed by wall clock (DVC's start-up included; analytics off):

* ``dvc --version`` (``--runs`` times): what starting DVC costs;
* ``noop_repro``: ``dvc repro`` with nothing to do (``--runs`` times; ``ran_no_stage``: no run ran a stage or
  restored one from DVC's run cache);
* ``status``: ``dvc status`` (``--runs`` times): what it costs DVC just to check every stage;
* ``changed``: the dataset's ``test_frame_step`` halved in the workspace's ``params.yaml``, then ``dvc repro
  --no-run-cache`` (so a stage does its work even when a previous run built this value and DVC's run cache holds
  its outputs): its time, the stages it ran (its ``Running stage '...'`` lines, in order) and each one's time (from
  its line to the next, DVC's hashing and commit of the stage's outputs included), against the stages expected
  from the dependency rules of docs/operations.md, computed from the workspace's dvc.yaml and params.yaml: the
  dataset's own stages (every stage ``foreach`` dataset); ``merge_sources`` where dvc.yaml has it; every merge when
  the merge stage depends on the whole caches folder, else the merges listing the dataset as a source; the
  validation and merge exports of those; the subsets of the dataset and the exports of the dataset or its
  subsets; ``refit_config`` when one of those exports is its dependency. ``match`` says whether the two sets are
  equal (``missing`` / ``unexpected`` list the differences); nothing is asserted;
* ``restore``: the workspace's ``params.yaml`` written back byte for byte and ``dvc repro`` run again (its time,
  the stages it ran and those DVC restored from its run cache: the original value's outputs are there); then
  ``dvc status`` must be clean and the dataset's cache folder hold the same bytes as before (``restored``), so the
  workspace is left as it was found (the demo's own run also halves this step, and its next run resets its
  params).

Ratios: no-op repro over status (medians), no-op repro and status over the changed run, over the stages it ran (the
sum of their times) and per stage. The JSON (written atomically) records these, the workspace (stages, deps and
outputs in dvc.lock, files DVC tracks), the machine, the timestamps and the code measured (the git commit and the
uncommitted changes of the pipeline's code, dvc.yaml and params.yaml: ``code.clean``); as with the other
benchmarks, the default output is not written from uncommitted code unless ``--allow-dirty`` is given. Do not run
it while other heavy work runs on the machine: it measures wall time.
"""

from __future__ import annotations

import argparse
import datetime
import filecmp
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from posebank.core.atomic import write_json

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))  # bench/provenance.py, also when this file is imported by path
from provenance import code_state  # noqa: E402

DEFAULT_OUT = REPO / "bench" / "results" / "repro.json"
DEMO = REPO / "build" / "demo"
DEFAULT_WORK = REPO / "build" / "bench" / "repro"
BIN = Path(sys.executable).parent
RUNNING = re.compile(r"Running stage '([^']+)'")
RUN_CACHED = re.compile(r"Stage '([^']+)' is cached - skipping run")
# the quick workspace: H36M's fixture with one training and one test subject (as tests/conftest.py's small one)
QUICK_FIXTURE = {"seed": 3, "subjects": [1, 9], "n_frames": 70}
QUICK_PARAMS = {"train_subjects": [1], "test_subjects": [9]}


class BenchError(Exception):
    """A workspace or an option the benchmark cannot work with: printed as one line, exit status 2."""


def env() -> dict:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "DVC_NO_ANALYTICS": "1",
            "GX_ANALYTICS_ENABLED": "false", "PYTHONUNBUFFERED": "1"}


def run(cmd: list[str], cwd: Path) -> dict:
    """Run ``cmd`` with its output read line by line as it comes: wall time, the lines with their times."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         bufsize=1)
    lines = []
    assert p.stdout is not None
    for line in p.stdout:
        lines.append((time.perf_counter() - t0, line.rstrip("\n")))
    rc = p.wait()
    seconds = time.perf_counter() - t0
    if rc:
        tail = "\n".join(text for _, text in lines[-30:])
        raise RuntimeError(f"{' '.join(cmd)} failed in {cwd} (exit status {rc}):\n{tail}")
    return {"seconds": seconds, "lines": lines}


def stage_events(result: dict) -> list[dict]:
    """The stages a ``dvc repro`` ran (``Running stage '...'``) or restored from DVC's run cache (``Stage '...' is
    cached - skipping run``), in order, each timed from its line to the next such line (or the command's end)."""
    events = []
    for t, text in result["lines"]:
        for pattern, kind in ((RUNNING, "ran"), (RUN_CACHED, "run_cache")):
            if m := pattern.search(text):
                events.append((t, m.group(1), kind))
    ends = [t for t, _, _ in events[1:]] + [result["seconds"]]
    return [{"stage": name, "seconds": round(end - t, 3), "kind": kind} for (t, name, kind), end in zip(events, ends)]


def stages_run(result: dict) -> list[dict]:
    """The stages a ``dvc repro`` ran, each with its time (:func:`stage_events`)."""
    return [{"stage": e["stage"], "seconds": e["seconds"]} for e in stage_events(result) if e["kind"] == "ran"]


def run_cache_hits(result: dict) -> list[str]:
    """The stages a ``dvc repro`` restored from DVC's run cache instead of running them."""
    return [e["stage"] for e in stage_events(result) if e["kind"] == "run_cache"]


def timings(values: list[float]) -> dict:
    return {"runs": len(values), "median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3), "all": [round(v, 3) for v in values]}


def repeated(cmd: list[str], cwd: Path, runs: int, quiet_check=None) -> dict:
    """``cmd`` run ``runs`` times: its timings (and, with ``quiet_check``, whether every run passed it)."""
    values, ok = [], True
    for _ in range(runs):
        r = run(cmd, cwd)
        values.append(r["seconds"])
        if quiet_check is not None:
            ok = ok and quiet_check(r)
    out = timings(values)
    if quiet_check is not None:
        out["ran_no_stage"] = ok
    return out


def dvc_status_clean(ws: Path) -> bool:
    r = run(["dvc", "status", "--json"], ws)
    text = "\n".join(t for _, t in r["lines"])
    return "{" not in text or json.loads(text[text.index("{"):text.rindex("}") + 1]) == {}


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    return [f for f in out.split("\n") if f and (REPO / f).is_file()]


def unsynced(ws: Path) -> list[str]:
    """The checkout's tracked files the workspace does not hold byte for byte (params.yaml and dvc.lock are the
    workspace's own)."""
    return [f for f in tracked_files() if f not in ("params.yaml", "dvc.lock")
            and not ((ws / f).is_file() and filecmp.cmp(REPO / f, ws / f, shallow=False))]


def folder_md5(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


# ------------------------------------------------------------------------------------------ workspaces
def quick_workspace(base: Path) -> Path:
    """A scratch copy of the tracked files with Human3.6M's small fixture only, built with ``dvc repro``."""
    from posebank.datasets import h36m

    ws = base / "repo"
    for f in tracked_files():
        (ws / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / f, ws / f)
    (ws / "dvc.lock").unlink(missing_ok=True)
    params = yaml.safe_load((ws / "params.yaml").read_text())
    params["datasets"] = {"h36m": {**params["datasets"]["h36m"], **QUICK_PARAMS}}
    params["segment"]["backend"] = "none"
    for section in ("merges", "subsets", "exports", "merge_exports"):
        params[section] = {}
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    dvc = yaml.safe_load((ws / "dvc.yaml").read_text())
    dvc["stages"].pop("refit_config", None)  # over ReFit's exports, none in this workspace
    (ws / "dvc.yaml").write_text(yaml.safe_dump(dvc, sort_keys=False))
    h36m.make_fixture(ws / params["datasets"]["h36m"]["raw"], **QUICK_FIXTURE)
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@posebank.invalid"]
    for cmd in (["git", "init", "-q"], [*git, "add", "-A"], [*git, "commit", "-qm", "bench workspace"]):
        run(cmd, ws)
    return ws


def prepare_workspace(args) -> tuple[Path, dict]:
    """The workspace to measure, built; what it took to get it there."""
    setup: dict = {"command": None, "seconds": 0.0}
    if args.quick:
        ws = quick_workspace(args.tmp)
        r = run(["dvc", "repro"], ws)
        setup.update(command="dvc repro (scratch workspace)", seconds=round(r["seconds"], 1),
                     stages=len(stages_run(r)))
        return ws, setup
    ws = (args.workspace or DEMO).resolve()
    if args.workspace is not None:
        if not (ws / "dvc.yaml").is_file() or not (ws / ".dvc").is_dir():
            raise BenchError(f"{ws}: not a DVC workspace (no dvc.yaml or .dvc/)")
        if not (ws / "dvc.lock").is_file() or not dvc_status_clean(ws):
            r = run(["dvc", "repro"], ws)
            setup.update(command="dvc repro", seconds=round(r["seconds"], 1), stages=len(stages_run(r)))
        return ws, setup
    stale = [] if not (ws / "dvc.lock").is_file() else unsynced(ws)
    if not (ws / "dvc.lock").is_file() or stale or not dvc_status_clean(ws):
        reason = ("missing" if not ws.is_dir() else "not built" if not (ws / "dvc.lock").is_file() else
                  f"{len(stale)} files differ from the checkout's" if stale else "stale stages")
        print(f"demo workspace {ws}: {reason}: running scripts/demo.py first", flush=True)
        r = run([sys.executable, str(REPO / "scripts" / "demo.py")], REPO)
        setup.update(command="python scripts/demo.py", reason=reason, seconds=round(r["seconds"], 1))
        if not dvc_status_clean(ws):
            raise BenchError(f"{ws}: still has stale stages after scripts/demo.py")
    return ws, setup


def workspace_info(ws: Path) -> dict:
    lock = yaml.safe_load((ws / "dvc.lock").read_text()) or {}
    stages = lock.get("stages", {})
    deps = sum(len(s.get("deps", [])) for s in stages.values())
    outs = [o for s in stages.values() for o in s.get("outs", [])]
    files = sum(int(o.get("nfiles", 1)) for o in outs)
    return {"path": str(ws), "stages": len(stages), "deps": deps, "outs": len(outs), "files_in_outs": files,
            "params_bytes": (ws / "params.yaml").stat().st_size}


# ------------------------------------------------------------------------------------------ expectation
def expected_stages(dvc: dict, params: dict, dataset: str) -> set[str]:
    """The stages a change to ``datasets.<dataset>`` reruns by the dependency rules (docs/operations.md)."""
    stages = dvc.get("stages", {})
    # the dataset's own stages: every stage `foreach` dataset
    out = {f"{s}@{dataset}" for s, spec in stages.items() if spec.get("foreach") == "${datasets}"}
    merges = params.get("merges") or {}
    containing = {m for m, spec in merges.items() if any(src.get("dataset") == dataset
                                                         for src in spec.get("sources", []))}
    if "merge_sources" in stages:
        out.add("merge_sources")
    if "merge" in stages:
        whole = "${pipeline.cache}" in (stages["merge"].get("do", {}).get("deps") or [])
        out |= {f"merge@{m}" for m in (merges if whole else containing)}
    if "validate_merge" in stages:
        out |= {f"validate_merge@{m}" for m in containing}
    if "export_merge" in stages:
        out |= {f"export_merge@{e}" for e, spec in (params.get("merge_exports") or {}).items()
                if spec.get("source") in containing}
    subsets = {s for s, spec in (params.get("subsets") or {}).items() if spec.get("source") == dataset}
    if "subset" in stages:
        out |= {f"subset@{s}" for s in subsets}
    exports = {e for e, spec in (params.get("exports") or {}).items() if spec.get("source") in {dataset, *subsets}}
    if "export" in stages:
        out |= {f"export@{e}" for e in exports}
    refit = stages.get("refit_config")
    if refit and any(dep.endswith(f"/{e}") for dep in refit.get("deps", []) for e in exports):
        out.add("refit_config")
    return out


# ------------------------------------------------------------------------------------------ the measurement
def measure(ws: Path, dataset: str, runs: int) -> dict:
    quiet = lambda r: not stage_events(r)  # noqa: E731
    startup = repeated(["dvc", "--version"], ws, runs)
    noop = repeated(["dvc", "repro"], ws, runs, quiet)
    status = repeated(["dvc", "status"], ws, runs)

    params_file = ws / "params.yaml"
    original = params_file.read_bytes()
    params = yaml.safe_load(original)
    entry = (params.get("datasets") or {}).get(dataset)
    if entry is None:
        raise BenchError(f"{params_file}: datasets.{dataset}: no such dataset in the workspace")
    cache = ws / params["pipeline"]["cache"] / dataset
    cache_before = folder_md5(cache)
    old_step = int(entry.get("test_frame_step", 0) or 0)
    if old_step < 2:
        raise BenchError(f"{params_file}: datasets.{dataset}.test_frame_step: {old_step or 'absent'}, cannot be "
                         "halved (the benchmark changes it)")
    new_step = old_step // 2
    entry["test_frame_step"] = new_step
    expected = expected_stages(yaml.safe_load((ws / "dvc.yaml").read_text()), params, dataset)
    try:
        params_file.write_text(f"# {dataset}'s test_frame_step halved by bench/repro.py (restored afterwards)\n"
                               + yaml.safe_dump(params, sort_keys=False))
        # the run cache off: the stages do their work even where this param value was built before (a second run)
        changed = run(["dvc", "repro", "--no-run-cache"], ws)
    finally:
        params_file.write_bytes(original)
    ran = stages_run(changed)
    restore = run(["dvc", "repro"], ws)
    names = [s["stage"] for s in ran]
    return {
        "dvc_startup": startup,
        "noop_repro": noop,
        "status": status,
        "changed": {
            "param": f"datasets.{dataset}.test_frame_step", "from": old_step, "to": new_step,
            "seconds": round(changed["seconds"], 3),
            "stages_seconds": round(sum(s["seconds"] for s in ran), 3),
            "ran": ran,
            "expected": sorted(expected),
            "match": set(names) == expected and len(names) == len(set(names)),
            "missing": sorted(expected - set(names)),
            "unexpected": sorted(set(names) - expected),
        },
        "restore": {"seconds": round(restore["seconds"], 3), "ran": stages_run(restore),
                    "from_run_cache": run_cache_hits(restore)},
        "restored": {"params_identical": params_file.read_bytes() == original,
                     "status_clean": dvc_status_clean(ws),
                     "cache_identical": folder_md5(cache) == cache_before},
    }


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 4) if b else None


def ratios(m: dict) -> dict:
    noop, status, changed = m["noop_repro"]["median"], m["status"]["median"], m["changed"]
    n = len(changed["ran"])
    return {"noop_repro_over_status": ratio(noop, status),
            "noop_repro_over_changed_repro": ratio(noop, changed["seconds"]),
            "noop_repro_over_stages_run": ratio(noop, changed["stages_seconds"]),
            "noop_repro_over_mean_stage": ratio(noop, changed["stages_seconds"] / n) if n else None,
            "status_over_changed_repro": ratio(status, changed["seconds"]),
            "dvc_startup_over_noop_repro": ratio(m["dvc_startup"]["median"], noop)}


def machine_info() -> dict:
    import posebank

    meminfo = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, value = line.split(":", 1)
            if key in ("MemTotal", "MemAvailable"):
                meminfo[key.lower()] = round(int(value.split()[0]) / (1 << 20), 1)
    cpu_model = None
    with open("/proc/cpuinfo") as f:
        cpu_model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    dvc_version = subprocess.run(["dvc", "--version"], env=env(), capture_output=True, text=True).stdout.strip()
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "cpu_model": cpu_model,
            "platform": platform.platform(), "memory_gib": meminfo, "dvc": dvc_version,
            "posebank": posebank.__version__}


def print_table(results: dict) -> None:
    m = results["measurements"]
    print(f"workspace {results['workspace']['path']}: {results['workspace']['stages']} stages, "
          f"{results['workspace']['files_in_outs']} files in their outputs")
    for key, label in (("dvc_startup", "dvc --version"), ("noop_repro", "no-op dvc repro"), ("status", "dvc status")):
        t = m[key]
        print(f"  {label:<16} median {t['median']:7.2f} s  (min {t['min']:.2f}, max {t['max']:.2f}, {t['runs']} runs)")
    c = m["changed"]
    verdict = "as expected" if c["match"] else f"NOT as expected: missing {c['missing']}, unexpected {c['unexpected']}"
    print(f"  {c['param']} {c['from']} -> {c['to']}: dvc repro {c['seconds']:.1f} s, {len(c['ran'])} stages ran "
          f"({verdict})")
    for s in c["ran"]:
        print(f"    {s['stage']:<32} {s['seconds']:8.2f} s")
    print(f"  restore: dvc repro {m['restore']['seconds']:.1f} s, {len(m['restore']['ran'])} stages ran, "
          f"{len(m['restore']['from_run_cache'])} restored from the run cache; "
          f"restored {m['restored']}")
    r = results["ratios"]
    print(f"  no-op repro / status {r['noop_repro_over_status']}, no-op repro / changed repro "
          f"{r['noop_repro_over_changed_repro']}, no-op repro / mean rerun stage {r['noop_repro_over_mean_stage']}")
    if not results["code"]["clean"]:
        print(f"note: the measured code differs from commit {results['code']['git_commit']}: "
              f"{', '.join(results['code']['changed_files'][:10])}")


def measured_files() -> list[Path]:
    """What a run measures besides this script: the pipeline's code and definition (and the demo)."""
    files = [REPO / "dvc.yaml", REPO / "params.yaml", REPO / "scripts" / "demo.py"]
    files += sorted((REPO / "stages").glob("*.py")) + sorted((REPO / "src" / "posebank").rglob("*.py"))
    return files


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workspace", type=Path, default=None,
                    help=f"the DVC workspace to measure (default {DEMO.relative_to(REPO)}, built by scripts/demo.py "
                         "when needed)")
    ap.add_argument("--dataset", default="h36m", help="the dataset whose test_frame_step is halved (default h36m)")
    ap.add_argument("--runs", type=int, default=None, help="runs of each no-op command (default 5; --quick 2)")
    ap.add_argument("--quick", action="store_true",
                    help="a check that the script runs: a scratch workspace with H36M's small fixture only")
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK,
                    help=f"where --quick makes its scratch workspace (default {DEFAULT_WORK.relative_to(REPO)}; "
                         "removed at the end)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON output (default {DEFAULT_OUT})")
    ap.add_argument("--allow-dirty", action="store_true",
                    help=f"write {DEFAULT_OUT.relative_to(REPO)} even when the measured code is not committed")
    args = ap.parse_args(argv)
    runs = args.runs if args.runs is not None else (2 if args.quick else 5)
    out = args.out.resolve()
    if args.quick and out == DEFAULT_OUT:
        print(f"error: --quick: give --out (a quick run does not replace {DEFAULT_OUT.relative_to(REPO)})",
              file=sys.stderr)
        return 2
    if args.quick and args.workspace is not None:
        print("error: --quick: makes its own workspace; --workspace is for a full run", file=sys.stderr)
        return 2
    if runs < 1:
        print("error: --runs must be >= 1", file=sys.stderr)
        return 2
    import posebank.datasets  # noqa: F401  (loaded before the code state is taken)

    code = code_state(__file__, measured_files())
    if out == DEFAULT_OUT and not code["clean"] and not args.allow_dirty:
        print(f"error: {DEFAULT_OUT.relative_to(REPO)}: not measured: the code it would measure differs from commit "
              f"{code['git_commit']} ({', '.join(code['changed_files'][:10])}); commit it and rerun, or pass "
              "--allow-dirty (recorded as code.clean: false) or --out elsewhere", file=sys.stderr)
        return 2

    started_utc = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    started = time.perf_counter()
    args.tmp = None
    try:
        if args.quick:
            args.work.mkdir(parents=True, exist_ok=True)
            args.tmp = Path(tempfile.mkdtemp(prefix="posebank-bench-repro-", dir=args.work))
        ws, setup = prepare_workspace(args)
        info = workspace_info(ws)
        print(f"measuring {ws} ({info['stages']} stages), {runs} runs per no-op command", flush=True)
        measurements = measure(ws, args.dataset, runs)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        if args.tmp is not None:
            shutil.rmtree(args.tmp, ignore_errors=True)
    results = {
        "benchmark": "repro",
        "created_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "started_utc": started_utc,
        "seconds": round(time.perf_counter() - started, 1),
        "code": code,
        "machine": machine_info(),
        "params": {"quick": args.quick, "runs": runs, "dataset": args.dataset,
                   "timing": "wall clock of each command as a subprocess (DVC's start-up included); a stage's "
                             "time: from its 'Running stage' line to the next one or the command's end"},
        "setup": setup,
        "workspace": info,
        "measurements": measurements,
        "ratios": ratios(measurements),
    }
    print_table(results)
    write_json(out, results)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`make demo`: the whole pipeline on generated fixtures, offline.

The demo runs in its own workspace, `build/demo/` (a copy of this repository's tracked files with its own git
repository), so it never touches `data/` of this checkout, where real raw trees live. There it writes fixture raw
trees (miniature copies of each dataset's real layout), runs `dvc repro` on the repository's own dvc.yaml and
params.yaml (only the fixture-scale overrides below differ), pushes to the DVC remote and prints what was built.
A second run reuses fixtures and up-to-date stages.
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKSPACE = ROOT / "build" / "demo"
DEMO_DONE = ".posebank-demo-fixtures"
# what differs from params.yaml: sizes that suit miniature raw trees
OVERRIDES = {"datasets": {"muco_3dhp": {"n_composites": 60},
                          # one camera of each kind (chest, telephoto, ceiling, low) instead of all 14
                          "tdhp_full": {"cameras": [0, 2, 3, 9]},
                          # the fixture writes AGORA's 1280x720 images and two of its ten dataframes
                          "agora": {"resolution": "1280x720", "dataframes": [0, 1]},
                          # three of AIST++'s nine views (a ring camera, the opposite one, the high one)
                          "aist": {"cameras": ["c01", "c04", "c09"]}},
             # shards of about 40 examples instead of 1 GB, so that the miniature caches are cut as big ones are
             "pipeline": {"shard_mb": 4},
             # manual DAG runs only: unpausing a weekly DAG also starts a run of its latest week
             "airflow": {"schedule": None}}
STORAGE = Path(".dvc-storage")  # the default remote (relative to the workspace)
GIT = ["git", "-c", "user.name=posebank demo", "-c", "user.email=demo@posebank.invalid"]


def step(title: str) -> None:
    print(f"\n==> {title}", flush=True)


def run(*cmd: str, quiet: bool = False) -> None:
    if not quiet:
        print("$ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=WORKSPACE, check=True, stdout=subprocess.DEVNULL if quiet else None)


def merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(base.get(k, {}), v) if isinstance(v, dict) else v
    return out


def sync_workspace() -> None:
    """Copy the tracked files (changed ones only, so that DVC sees unchanged deps as unchanged)."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split("\n")
    for f in filter(None, files):
        src, dst = ROOT / f, WORKSPACE / f
        if not src.is_file() or f in ("params.yaml", "dvc.lock", ".dvc/config"):
            continue
        if not dst.exists() or not filecmp.cmp(src, dst, shallow=False):
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    params = merge(yaml.safe_load((ROOT / "params.yaml").read_text()), OVERRIDES)
    text = "# params.yaml of the repository with the demo's fixture-scale overrides\n" + yaml.safe_dump(
        params, sort_keys=False)
    if not (WORKSPACE / "params.yaml").exists() or (WORKSPACE / "params.yaml").read_text() != text:
        (WORKSPACE / "params.yaml").write_text(text)
    # the default remote as an absolute path: clones of the workspace (and `dvc import` from it) find it too
    config = (ROOT / ".dvc" / "config").read_text()
    assert "url = ../.dvc-storage" in config, "the default remote of .dvc/config moved: update the demo"
    config = config.replace("url = ../.dvc-storage", f"url = {WORKSPACE / STORAGE}")
    target = WORKSPACE / ".dvc" / "config"
    if not target.is_file() or target.read_text() != config:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(config)
    if not (WORKSPACE / ".git").exists():
        run("git", "init", "-q", quiet=True)
    run(*GIT, "add", "-A", quiet=True)
    if subprocess.run(["git", "diff", "--cached", "--quiet"], cwd=WORKSPACE).returncode:
        run(*GIT, "commit", "-qm", "demo workspace", quiet=True)


def _md5s(folder: Path) -> dict[str, str]:
    import hashlib

    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def _objects() -> set[str]:
    return {str(p) for p in STORAGE.rglob("*") if p.is_file()} if STORAGE.is_dir() else set()


def changed_shards(params: dict) -> None:
    """Halve H36M's test_frame_step in the workspace's params.yaml, rebuild and push: which cache files changed and
    how many objects the push uploaded (the workspace's params.yaml is reset by the next demo run)."""
    cache = Path(params["pipeline"]["cache"]) / "h36m"
    before, objects = _md5s(cache), _objects()
    p = yaml.safe_load(Path("params.yaml").read_text())
    step_now = p["datasets"]["h36m"]["test_frame_step"]
    p["datasets"]["h36m"]["test_frame_step"] = max(1, step_now // 2)
    Path("params.yaml").write_text("# the demo's params with H36M's test_frame_step halved\n"
                                   + yaml.safe_dump(p, sort_keys=False))
    run("dvc", "repro", "-q", "validate@h36m")
    after = _md5s(cache)
    changed = sorted(n for n in before.keys() | after.keys() if before.get(n) != after.get(n) and n != "index.json")
    run(sys.executable, "-m", "posebank.cli", "push", "crop@h36m")
    uploaded = _objects() - objects
    n_bytes = sum(Path(o).stat().st_size for o in uploaded)
    shards = [n for n in after if n != "index.json"]
    print(f"h36m: test_frame_step {step_now} -> {p['datasets']['h36m']['test_frame_step']}: {len(changed)} of "
          f"{len(shards)} shard files rewritten or new ({', '.join(changed)}), index.json updated, the other "
          f"{len(shards) - len([n for n in changed if n in after])} byte-identical; posebank push uploaded "
          f"{len(uploaded)} objects ({n_bytes / 1e6:.1f} MB of a "
          f"{sum((cache / n).stat().st_size for n in after) / 1e6:.1f} MB cache folder, with the records and the "
          "folder's listing)")


def pulled_clone(params: dict) -> None:
    """A fresh clone of the workspace's git repository pulls small5 (its file and its source caches, nothing else)
    and reads it."""
    import hashlib

    from posebank.loader import PoseDataset

    clone = WORKSPACE.parent / "demo-clone"
    shutil.rmtree(clone, ignore_errors=True)
    run("git", "clone", "-q", str(WORKSPACE), str(clone))
    print(f"$ cd {clone.relative_to(ROOT)} && posebank pull small5", flush=True)
    subprocess.run([sys.executable, "-m", "posebank.cli", "pull", "small5"], cwd=clone, check=True)
    merged = Path(params["pipeline"]["merged"]) / "small5.h5"
    same = hashlib.md5((clone / merged).read_bytes()).digest() == hashlib.md5(merged.read_bytes()).digest()
    files = [p for p in (clone / "data").rglob("*") if p.is_file()]
    ds = PoseDataset(clone / merged, split="train")
    item = ds[len(ds) // 2]
    verdict = "identical to" if same else "DIFFERS FROM"
    print(f"clone {clone.relative_to(ROOT)}: {len(files)} files pulled under data/ "
          f"({sum(p.stat().st_size for p in files) / 1e6:.1f} MB), small5.h5 {verdict} the workspace's; "
          f"PoseDataset(train): {len(ds)} examples, example {len(ds) // 2} from {item['source']}, "
          f"image {item['image'].shape}, {int(item['joint_valid'].sum())} valid joints")
    if not same:
        raise SystemExit("the pulled small5.h5 differs from the built one")


AIRFLOW_LISTING = """
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder="dags", known_pools={"default_pool", "gpu", "dvc"})
assert not bag.import_errors, bag.import_errors
datasets = sorted(d for d in bag.dag_ids if not d.startswith("posebank_merge_"))
merges = sorted(d for d in bag.dag_ids if d.startswith("posebank_merge_"))
h36m = bag.dags["posebank_h36m"]
order = [t.task_id + (f" [{t.pool}]" if t.pool != "default_pool" else "") for t in h36m.topological_sort()]
schedule = getattr(h36m, "schedule", None)
print(f"{len(datasets)} dataset DAGs (schedule {schedule}): posebank_h36m = {' -> '.join(order)}")
for m in merges:
    d = bag.dags[m]
    n = len(getattr(d.timetable, "asset_condition", None).objects) if hasattr(d.timetable, "asset_condition") else 0
    print(f"{m}: on {n} cache Assets; {' -> '.join(t.task_id for t in d.topological_sort())}")
"""


def airflow_dags() -> None:
    """Parse the DAG folder (a private AIRFLOW_HOME under build/, no scheduler): what Airflow would schedule."""
    home = WORKSPACE.parent / "airflow-demo"
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__DAGS_FOLDER": str(WORKSPACE / "dags"), "POSEBANK_WORKSPACE": str(WORKSPACE),
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
           "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING", "PYTHONWARNINGS": "ignore"}
    subprocess.run([sys.executable, "-c", AIRFLOW_LISTING], cwd=WORKSPACE, env=env, check=True)


def airflow_service() -> None:
    """scripts/airflow_service.py (what `make airflow` runs) over this workspace on a free port of 127.0.0.1: start,
    run posebank_h36m through the REST API (every stage finds its shards current), a screenshot of its grid when
    Chromium is installed, then stop (no process left)."""
    import socket

    home = WORKSPACE.parent / "airflow-service-demo"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    script = [sys.executable, str(ROOT / "scripts" / "airflow_service.py")]
    where = ["--home", str(home)]
    env = {k: v for k, v in os.environ.items() if k != "AIRFLOW_HOME"}
    try:
        started = subprocess.run([*script, "start", *where, "--workspace", str(WORKSPACE), "--port", str(port)],
                                 env=env, capture_output=True, text=True)
        if started.returncode != 0:
            raise SystemExit(f"airflow start failed:\n{started.stdout}{started.stderr}")
        print("\n".join(line for line in started.stdout.splitlines() if "password" not in line))
        subprocess.run([*script, "trigger", *where, "--dag", "posebank_h36m", "--timeout", "900"], env=env,
                       check=True)
        png = WORKSPACE.parent / "airflow-grid.png"
        if Path("/usr/bin/chromium").is_file():
            subprocess.run([*script, "screenshot", *where, "--dag", "posebank_h36m", "--out", str(png)], env=env,
                           check=True)
        else:
            print("no screenshot: Chromium is not installed (Debian package chromium)")
    finally:
        subprocess.run([*script, "stop", *where], env=env, check=True)


def train_loop(path: Path, epochs: int = 2) -> None:
    """Two epochs of a training-style loop: batches from the merge's own sampler, joints projected into the crops."""
    import numpy as np
    from torch.utils.data import DataLoader

    from posebank.loader import PoseDataset, collate, sampler_for

    ds = PoseDataset(path, split="train", output_size=256)
    batches = sampler_for(ds)
    loader = DataLoader(ds, batch_sampler=batches, num_workers=2, collate_fn=collate)
    t, n, inside, valid = time.time(), 0, 0, 0
    for epoch in range(epochs):
        batches.set_epoch(epoch)
        for b in loader:
            X, ok = b["world_coords"].numpy().astype(np.float64), b["joint_valid"].numpy()
            cam = np.einsum("nij,nkj->nki", b["R"].numpy(), X - b["t"].numpy()[:, None])
            uv = np.einsum("nij,nkj->nki", b["intrinsic_matrix"].numpy(), cam)
            uv = uv[..., :2] / uv[..., 2:]
            inside += int(((uv >= -0.5) & (uv < 255.5)).all(-1)[ok].sum())
            valid += int(ok.sum())
            n += len(b["source"])
    per = {s: int(c) for s, c in batches.counts.items()}
    print(f"small5 train: {len(ds)} examples, {len(ds.joint_names)} union joints; {epochs} epochs of "
          f"{len(batches)} batches of {batches.batch_size} ({per} per batch) = {n} examples in "
          f"{time.time() - t:.1f} s; {inside} of {valid} valid joints project inside their 256 x 256 crop")


def main() -> int:
    sys.path.insert(0, str(ROOT / "src"))
    from posebank import datasets
    from posebank.cli import format_summary
    from posebank.core.store import Cache

    t0 = time.time()
    WORKSPACE.mkdir(parents=True, exist_ok=True)
    step(f"demo workspace {WORKSPACE.relative_to(ROOT)} (tracked files of this checkout + fixture overrides)")
    sync_workspace()
    os.chdir(WORKSPACE)
    params = yaml.safe_load(Path("params.yaml").read_text())
    names = [n for n in params["datasets"] if n in datasets.names()]

    step("fixture raw trees (miniature copies of the datasets' real layouts)")
    for name in names:
        raw = Path(params["datasets"][name]["raw"])
        make_fixture = datasets.get(name).make_fixture
        key = f"{make_fixture.__module__}.{make_fixture.__name__}"
        done_file = raw / DEMO_DONE
        if done_file.exists() and key in done_file.read_text().split():
            print(f"{name}: fixture already at {raw}")
            continue
        # several datasets share one raw tree (3DHP training tree: tdhp, tdhp_full, muco_3dhp): a folder the demo
        # wrote before (it holds the marker file) is completed in place
        force = ["--force"] if done_file.exists() else []
        run(sys.executable, "-m", "posebank.cli", "fixture", name, str(raw), *force)
        with open(done_file, "a") as f:
            f.write(key + "\n")

    step("dvc repro: convert -> frames -> detect -> segment -> crop -> validate per dataset, then merge -> "
         "validate_merge per merge (small5, medium3 and huge8, each whole), subset per subset (3DPW's test "
         "subset), export per export (ReFit's npz files, HumanData, small5 as barecat), refit_config; up-to-date "
         "stages are skipped")
    run("dvc", "repro")

    step("posebank push to the default remote (build/demo/.dvc-storage): dvc push, then every object checked in "
         "the remote itself")
    run(sys.executable, "-m", "posebank.cli", "push")
    run("dvc", "status", "-c")

    step("a release: dvc.lock committed in the workspace's git, small5 tagged after its validation passed and "
         "its objects are in the remote; then a fresh clone pulls exactly small5 and the loader reads it")
    run(*GIT, "add", "dvc.lock", "reports/validation", "reports/stats", "reports/quarantine", quiet=True)
    if subprocess.run(["git", "diff", "--cached", "--quiet"], cwd=WORKSPACE).returncode:
        run(*GIT, "commit", "-qm", "built: dvc.lock", quiet=True)
    run(sys.executable, "-m", "posebank.cli", "release", "small5")
    run(sys.executable, "-m", "posebank.cli", "versions")
    pulled_clone(params)

    step("a change to part of a dataset: H36M's test_frame_step halved (its test subjects' frames only) -> "
         "only their shards are rebuilt and pushed")
    changed_shards(params)

    step("the rest of the pipeline after that change: merge_sources rewrites the same source digests (no merge "
         "holds h36m), so no merge reruns; the ReFit export of h36m does")
    merged = Path(params["pipeline"]["merged"])
    before = _md5s(merged)
    out = subprocess.run(["dvc", "repro"], cwd=WORKSPACE, check=True, capture_output=True, text=True).stdout
    ran = [line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage '")]
    after = _md5s(merged)
    print(f"$ dvc repro\nstages run: {', '.join(ran) or 'none'}")
    print(f"merged files unchanged: {', '.join(n for n in sorted(after) if before.get(n) == after[n])}")

    step("Airflow: the DAGs of dags/ parsed over this workspace's params.yaml (one per dataset, one per merge on "
         "its sources' Assets; docs/airflow.md)")
    airflow_dags()

    step("Airflow on 127.0.0.1 (make airflow): started over this workspace, posebank_h36m run through the REST API "
         "(its stages find every shard current), stopped with every process")
    airflow_service()

    step("training-style loop over small5 (posebank.loader: PoseDataset, round-robin sampler, 2 workers)")
    train_loop(merged / "small5.h5")

    step("summary")
    total = 0
    for name in names:
        with Cache(Path(params["pipeline"]["cache"]) / name) as cache:
            print(format_summary(cache.summary()))
            total += len(cache)
        reports = Path(params["pipeline"]["reports"])
        report = json.loads((reports / "validation" / f"{name}.json").read_text())
        print(f"validation   {report['expectations_passed']}/{report['expectations']} expectations passed "
              f"(pass rate {report['pass_rate']:.0%}); contact sheet {WORKSPACE / reports / 'contact' / name}.png")
        left_out = [json.loads(line) for line in (reports / "quarantine" / f"{name}.jsonl").read_text().splitlines()]
        print(f"quarantine   {len(left_out)} entries ({sum(q['count'] for q in left_out)} frames or instances) in "
              f"{reports / 'quarantine' / name}.jsonl")
        print()
    from posebank.cli import format_merge_summary
    from posebank.merging.reader import Merge

    for name in params.get("merges") or {}:
        with Merge(merged / f"{name}.h5") as m:
            print(format_merge_summary(m.summary()))
        report = json.loads((reports / "validation" / f"{name}.json").read_text())
        print(f"validation   {report['expectations_passed']}/{report['expectations']} expectations passed "
              f"(pass rate {report['pass_rate']:.0%}); contact sheet {WORKSPACE / reports / 'contact' / name}.png")
        print()
    for name, sub in (params.get("subsets") or {}).items():
        with Cache(Path(params["pipeline"]["cache"]) / name) as cache:
            print(format_summary(cache.summary()))
            n_split = json.loads((Path(params["pipeline"]["cache"]) / sub["source"] / "index.json").read_text())[
                "examples_per_split"][sub["split"]]
        report = json.loads((reports / "validation" / f"{name}.json").read_text())
        print(f"subset       {len(cache)} = min({sub['size']}, {n_split} {sub['source']} {sub['split']} examples), "
              f"seed {sub['seed']}, {sub['crop_px']} x {sub['crop_px']} crops")
        print(f"validation   {report['expectations_passed']}/{report['expectations']} expectations passed "
              f"(pass rate {report['pass_rate']:.0%})")
        print()
    from posebank.cli import format_export
    from posebank.exporting.common import read_manifest

    exports = Path(params["pipeline"]["exports"])
    export_names = [*(params.get("exports") or {}), *(params.get("merge_exports") or {})]
    for name in export_names:
        print(format_export(read_manifest(exports / name), WORKSPACE / exports / name))
        print()
    refit = exports / "refit"
    if refit.is_dir():
        print(f"ReFit        {WORKSPACE / refit}: {', '.join(sorted(p.name for p in refit.iterdir()))} (ReFit's "
              "three mixes and a data_config.py over the exported npz files and image roots)")
        print()
    print(f"{len(names)} datasets, {total} examples, {len(params.get('merges') or {})} merges, "
          f"{len(export_names)} exports, built and validated "
          f"in {time.time() - t0:.0f} s in {WORKSPACE}")
    print(f"Data Docs: {WORKSPACE / params['pipeline']['reports'] / 'data_docs/index.html'}")
    print("inspect a cache, a merge or an export: .venv/bin/posebank info build/demo/data/cache/<name> "
          "(or build/demo/data/merged/small5.h5, build/demo/data/exports/<export>)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

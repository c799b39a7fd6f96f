"""`make demo`: generate the fixture raw trees, run the DVC pipeline on them, push to the default remote and
print what was built. Runs offline; reuses fixtures and outputs that are already up to date."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_MARK = ".posebank-fixture"
DEMO_DONE = ".posebank-demo-fixtures"


def step(title: str) -> None:
    print(f"\n==> {title}", flush=True)


def run(*cmd: str) -> None:
    print("$ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)


def main() -> int:
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT / "src"))
    import yaml

    from posebank import datasets
    from posebank.cli import format_summary
    from posebank.store import Cache

    params = yaml.safe_load(open("params.yaml"))
    names = [n for n in params["datasets"] if n in datasets.names()]
    t0 = time.time()

    step("fixture raw trees (miniature copies of the datasets' real layouts)")
    for name in names:
        raw = Path(params["datasets"][name]["raw"])
        make_fixture = datasets.get(name).make_fixture
        key = f"{make_fixture.__module__}.{make_fixture.__name__}"
        done_file = raw / DEMO_DONE
        done = done_file.read_text().split() if done_file.exists() else []
        if raw.is_dir() and not (raw / FIXTURE_MARK).exists():
            print(f"{name}: {raw} holds a real raw tree; using it as it is")
        elif key in done:
            print(f"{name}: fixture already at {raw}")
        else:  # several datasets can share one raw tree (3DHP train/test, MuCo): each fixture writes its part
            run(sys.executable, "-m", "posebank.cli", "fixture", name, str(raw))
            with open(done_file, "a") as f:
                f.write(key + "\n")

    step("dvc repro (stages up to date are skipped)")
    run("dvc", "repro")

    step("dvc push to the default remote")
    run("dvc", "push", "-q")
    run("dvc", "status", "-c")

    step("summary")
    for name in names:
        path = Path("data/cache") / f"{name}.h5"
        with Cache(path) as cache:
            print(format_summary(cache.summary()))
            print()
    print(f"demo finished in {time.time() - t0:.0f} s; inspect a cache with `posebank info data/cache/<name>.h5`")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`make soak`: the reliability suite (tests/reliability) in its longer version, and a JSON summary of what it did.

Runs ``python -m pytest tests/reliability -p no:cacheprovider`` with ``POSEBANK_SOAK=1`` (more seeds, longer load
runs), ``POSEBANK_SOAK_SEEDS`` (``--seeds``) and ``POSEBANK_RELIABILITY_LOG`` (a temporary file every test's
``record(...)`` appends a JSON line to), then sums those lines per kind: faults injected per stage or fault,
runs recovered, bytes compared, bad inputs tried, items quarantined, load runs, their seconds and memory growth.
The summary (with pytest's pass / fail counts, the wall time and the git commit) is written atomically to
``--out`` (default build/soak/summary.json) and printed. The exit status is pytest's.

    python scripts/soak.py [--seeds N] [--out FILE] [-- PYTEST-ARGS...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "build" / "soak" / "summary.json"
# the string field that names what a record is about, per kind (its counts are also given per value of it)
GROUP_BY = {"interruption": "stage", "remote_fault": "fault", "bad_input": "case", "untrusted": "check"}
# fields that are not additive across records: their maximum is reported (memory growth of a load run)
MAXIMA = ("rss_growth_mb",)
# fields that identify one record rather than count anything
NOT_COUNTS = ("seed", "kill_at_s", "run_s")


def git_commit() -> dict:
    """The commit the suite ran on, and whether the work tree had changes."""
    def git(*args: str) -> str:
        r = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else ""

    return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(git("status", "--porcelain"))}


def read_records(log: Path) -> list[dict]:
    """The JSON lines the tests recorded (a line cut short by a killed test is skipped and counted)."""
    records, bad = [], 0
    if log.is_file():
        for line in log.read_text().splitlines():
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except ValueError:
                bad += 1
    if bad:
        print(f"soak: {bad} unreadable line(s) in the reliability log skipped", file=sys.stderr)
    return records


def _add(into: dict, record: dict) -> None:
    for key, value in record.items():
        if key in ("kind", "test") or key in NOT_COUNTS or isinstance(value, bool) or not isinstance(
                value, (int, float)):
            continue
        if key in MAXIMA:
            into[key] = max(into.get(key, value), value)
        else:
            into[key] = into.get(key, 0) + value


def summarize(records: list[dict]) -> dict:
    """Per kind: the tests that recorded it, the records, every count summed (maxima for memory growth) and, where
    the kind names a stage / fault / case / check, the same per name."""
    kinds: dict[str, dict] = {}
    tests: dict[str, set] = defaultdict(set)
    for r in records:
        kind = str(r.get("kind", "?"))
        k = kinds.setdefault(kind, {"tests": 0, "records": 0, "totals": {}})
        k["records"] += 1
        tests[kind].add(r.get("test"))
        _add(k["totals"], r)
        group = GROUP_BY.get(kind)
        if group and group in r:
            per = k.setdefault(f"per_{group}", {}).setdefault(str(r[group]), {"records": 0})
            per["records"] += 1
            _add(per, r)
    for kind, k in kinds.items():
        k["tests"] = len(tests[kind])

    def total(kind: str, field: str):
        return kinds.get(kind, {}).get("totals", {}).get(field, 0)

    faults = sum(total(kind, "faults") for kind in kinds)
    recovered = sum(total(kind, "recovered") for kind in kinds)
    headline = {
        "faults_injected": faults,
        "faults_injected_per_kind": {kind: total(kind, "faults") for kind in kinds if total(kind, "faults")},
        "runs_recovered": recovered,
        "bytes_compared": sum(total(kind, "bytes_compared") for kind in kinds),
        "hashes_compared": total("determinism", "hashes_compared"),
        "bad_inputs_tried": kinds.get("bad_input", {}).get("records", 0),
        "bad_inputs_refused": total("bad_input", "errors"),
        "items_quarantined": sum(total(kind, "quarantined") for kind in kinds),
        "files_scanned": total("untrusted", "files_scanned"),
        "load_runs": total("load", "runs"),
        "load_seconds": total("load", "seconds"),
        "load_rss_growth_mb_max": total("load", "rss_growth_mb"),
    }
    return {"totals": headline, "kinds": dict(sorted(kinds.items()))}


def pytest_counts(junit: Path) -> dict:
    """Passed, failed, errors and skipped from pytest's JUnit XML."""
    counts = {"tests": 0, "passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    try:
        root = ET.parse(junit).getroot()
    except (OSError, ET.ParseError):
        return {**counts, "note": "no JUnit report (pytest did not get to the end)"}
    for suite in ([root] if root.tag == "testsuite" else root.iter("testsuite")):
        for key, attr in (("tests", "tests"), ("failed", "failures"), ("errors", "errors"), ("skipped", "skipped")):
            counts[key] += int(suite.get(attr, 0))
    counts["passed"] = counts["tests"] - counts["failed"] - counts["errors"] - counts["skipped"]
    return counts


def write_atomic(path: Path, obj: dict) -> None:
    """The summary appears whole or not at all (posebank's own atomic write)."""
    sys.path.insert(0, str(ROOT / "src"))
    from posebank.core.atomic import write_json

    write_json(path, obj)


def _number(v) -> str:
    return f"{int(v):,}" if float(v).is_integer() else f"{v:.3g}"


def format_summary(s: dict) -> str:
    t = s["totals"]
    p = s["pytest"]
    lines = [f"soak: pytest exit {s['exit_status']}: {p['passed']} passed, {p['failed']} failed, {p['errors']} errors, "
             f"{p['skipped']} skipped in {s['wall_seconds']:.0f} s ({s['seeds']} seeds per fault test; commit "
             f"{(s['git']['commit'] or '?')[:12]}{' + changes' if s['git']['dirty'] else ''})",
             f"  faults injected   {t['faults_injected']}  "
             + ", ".join(f"{k} {v}" for k, v in t["faults_injected_per_kind"].items()),
             f"  runs recovered    {t['runs_recovered']}",
             f"  bytes compared    {t['bytes_compared']:,}   hashes compared {t['hashes_compared']}",
             f"  bad inputs tried  {t['bad_inputs_tried']} (refused with an error {t['bad_inputs_refused']}); "
             f"items quarantined {t['items_quarantined']}",
             f"  files scanned     {t['files_scanned']}",
             f"  load              {t['load_runs']} runs, {t['load_seconds']:.1f} s, RSS growth at most "
             f"{t['load_rss_growth_mb_max']} MB"]
    for kind, k in s["kinds"].items():
        group = GROUP_BY.get(kind)
        per = k.get(f"per_{group}", {}) if group else {}
        detail = "; ".join(f"{name}: " + ", ".join(f"{f} {_number(v)}" for f, v in c.items() if f != "records")
                           for name, c in sorted(per.items()))
        lines.append(f"  [{kind}] {k['tests']} tests, {k['records']} records" + (f": {detail}" if detail else ""))
    lines.append(f"summary: {s['out']}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=5, help="seeds per fault-injection test (default 5)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"the JSON summary (default {DEFAULT_OUT})")
    ap.add_argument("pytest_args", nargs="*", help="further pytest arguments (after --), e.g. -k interrupt")
    args = ap.parse_args(argv)
    if args.seeds < 1:
        ap.error("--seeds must be at least 1")
    out = args.out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".soak.", dir=out.parent) as tmp:
        log, junit = Path(tmp) / "records.jsonl", Path(tmp) / "junit.xml"
        env = {**os.environ, "POSEBANK_SOAK": "1", "POSEBANK_SOAK_SEEDS": str(args.seeds),
               "POSEBANK_RELIABILITY_LOG": str(log)}
        cmd = [sys.executable, "-m", "pytest", "tests/reliability", "-p", "no:cacheprovider", f"--junitxml={junit}",
               *args.pytest_args]
        print("$ " + " ".join(cmd), flush=True)
        t0 = time.time()
        status = subprocess.run(cmd, cwd=ROOT, env=env).returncode
        wall = time.time() - t0
        records = read_records(log)
        counts = pytest_counts(junit)
    summary = {"exit_status": status, "pytest": counts, "wall_seconds": round(wall, 1), "seeds": args.seeds,
               "git": git_commit(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0)),
               **summarize(records), "out": str(out)}
    write_atomic(out, summary)
    print(format_summary(summary), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())

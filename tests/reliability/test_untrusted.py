"""Untrusted files (issue 15 point 5): posebank's own formats never need pickle, the pickles datasets ship are read
only through the restricted unpickler, downloaded archives cannot write outside their target, the repository holds
no credentials, and every server posebank or its tests start listens on 127.0.0.1 only.

The code checks read the source with ``ast`` (a call, an import or a base class, not a word in a comment), so an
allowed use is named by file and qualified name, with the reason, in the allow-lists below. Related tests, not
repeated here: tests/core/test_safe_pickle.py (the unpickler itself), tests/datasets/test_tdpw.py and
test_agora.py (hostile pickles through ``convert`` in-process), tests/fetching/test_extract.py (every hostile member
kind through ``extract``), tests/dags/test_airflow_service.py (every socket the running Airflow instance listens on).
"""

from __future__ import annotations

import ast
import hashlib
import os
import pickle
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from fetching.localhttp import LocalServer, Served
from fetching.test_extract import FILES, write_tar, write_zip

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src" / "posebank"
CODE_DIRS = ("src", "stages", "scripts", "dags", "tests")
THIS = Path(__file__).resolve()


# ------------------------------------------------------------------------------------------------ reading the code
def python_files(*dirs: str) -> list[Path]:
    return sorted(p for d in dirs for p in (REPO / d).rglob("*.py") if ".venv" not in p.parts)


def import_names(tree: ast.AST) -> dict[str, str]:
    """Local name -> what the file's imports bind it to (``np`` -> ``numpy``, ``loads`` -> ``pickle.loads``).
    Imports inside functions count too: a file binding one name to two things is not worth the precision."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    names[a.asname] = a.name
                else:
                    names[a.name.split(".")[0]] = a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                names[a.asname or a.name] = f"{node.module}.{a.name}"
    return names


def dotted(node: ast.AST, names: dict[str, str]) -> str | None:
    """``pickle.Unpickler`` for ``pickle.Unpickler`` or ``p.Unpickler`` (``import pickle as p``); None for an
    expression that is not a chain of names."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([names.get(node.id, node.id), *reversed(parts)])


def keyword(call: ast.Call, name: str):
    """The keyword argument's node, or None when it is not given."""
    return next((k.value for k in call.keywords if k.arg == name), None)


def is_true(node) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring nodes (their text mentions file names without reading them)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(
                    first.value.value, str):
                out.add(id(first.value))
    return out


# whatever unpickles, by qualified name: any reference (a call, an alias, a base class) counts
UNPICKLING = {f"{m}.{f}" for m in ("pickle", "_pickle", "cPickle", "dill", "cloudpickle") for f in
              ("load", "loads", "Unpickler")} | {
    "pandas.read_pickle", "joblib.load", "shelve.open", "shelve.Shelf", "marshal.load", "marshal.loads",
    # msgpack-numpy rebuilds object arrays with pickle.loads
    "msgpack_numpy.unpackb", "msgpack_numpy.unpack", "msgpack_numpy.loads", "msgpack_numpy.load",
    "torch.serialization.load"}
PICKLE_MODULES = {"dill", "joblib", "cloudpickle"}  # importing them at all


def unpickling_uses(path: Path) -> list[tuple[str, int, str]]:
    """(qualified name, line, what) of every place in ``path`` that can unpickle."""
    tree = ast.parse(path.read_text(), str(path))
    names = import_names(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno, "import") for a in node.names if a.name.split(".")[0] in PICKLE_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PICKLE_MODULES:
            found.append((node.module, node.lineno, "import"))
        elif isinstance(node, (ast.Attribute, ast.Name)):
            name = dotted(node, names)
            if name in UNPICKLING:
                found.append((name, node.lineno, "reference"))
        if isinstance(node, ast.Call):
            name = dotted(node.func, names)
            if name in ("numpy.load", "numpy.lib.format.read_array", "numpy.lib.npyio.load"):
                flag = keyword(node, "allow_pickle")
                if flag is not None and not (isinstance(flag, ast.Constant) and flag.value is False):
                    found.append((name, node.lineno, "allow_pickle not False"))
            elif name == "torch.load" and not is_true(keyword(node, "weights_only")):
                found.append((name, node.lineno, "without weights_only=True"))
    return found


# (file under the repository, qualified name) -> why it is there
ALLOWED_UNPICKLING = {
    ("src/posebank/core/safe_pickle.py", "pickle.Unpickler"):
        "the restricted unpickler's base class: its find_class admits only the listed (module, name) pairs",
    ("src/posebank/merging/blocks.py", "pickle.loads"):
        "_portable_error checks that the forked merge reader's exception survives pickling before it is queued to "
        "the merge: the bytes are that exception's own, just made by pickle.dumps, never read from a file",
}


def test_the_code_unpickles_only_where_listed(tmp_path, record):
    """No pickle.load/loads/Unpickler, np.load(allow_pickle=True), torch.load without weights_only, joblib, dill,
    pandas.read_pickle or msgpack-numpy decoding anywhere in src/, stages/, scripts/ or dags/, except the listed
    places; and the listed places still exist (a stale entry would hide a new use at the same spot)."""
    files = python_files("src", "stages", "scripts", "dags")
    found = {}
    for path in files:
        rel = path.relative_to(REPO).as_posix()
        for name, line, what in unpickling_uses(path):
            found.setdefault((rel, name), []).append(f"line {line} ({what})")
    unexpected = {k: v for k, v in found.items() if k not in ALLOWED_UNPICKLING}
    assert not unexpected, f"unpickling outside core/safe_pickle.py: {unexpected}"
    assert set(found) == set(ALLOWED_UNPICKLING), f"allow-list entries no longer used: " \
                                                  f"{set(ALLOWED_UNPICKLING) - set(found)}"
    # the scanner sees through aliases, keyword flags and base classes (a check that it is not blind)
    probe = ("import pickle as p\nfrom pickle import loads as l\nimport numpy as np\nimport torch, joblib\n"
             "class U(p.Unpickler): pass\nnp.load('a', allow_pickle=True)\nnp.load('b', allow_pickle=False)\n"
             "torch.load('c')\ntorch.load('d', weights_only=True)\nl(b'')\n")
    (tmp_path / "probe.py").write_text(probe)
    seen = sorted((name, line) for name, line, _ in unpickling_uses(tmp_path / "probe.py"))
    assert seen == [("joblib", 4), ("numpy.load", 6), ("pickle.Unpickler", 5), ("pickle.loads", 10),
                    ("torch.load", 8)], seen
    record("untrusted", check="no unpickling in the code", files_scanned=len(files))


def test_every_dataset_that_reads_a_pkl_goes_through_safe_pickle(record):
    """The dataset modules naming a ``.pkl`` file (in code, not in a docstring) belong to families that read it
    with posebank.core.safe_pickle (``safe_pickle.load`` or a subclass of its restricted unpickler), and no dataset
    module unpickles any other way."""
    files = python_files("src/posebank/datasets")
    pkl_families, safe_families, other = set(), set(), {}
    for path in files:
        rel = path.relative_to(SRC / "datasets")
        family = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        tree = ast.parse(path.read_text(), str(path))
        names, skip = import_names(tree), docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip \
                    and ".pkl" in node.value:
                pkl_families.add(family)
            name = dotted(node, names) if isinstance(node, (ast.Attribute, ast.Name)) else None
            if name in ("posebank.core.safe_pickle.load", "posebank.core.safe_pickle._Restricted"):
                safe_families.add(family)
        uses = unpickling_uses(path)
        if uses:
            other[rel.as_posix()] = uses
    assert not other, f"dataset modules unpickling without safe_pickle: {other}"
    assert {"tdpw", "agora"} <= pkl_families, pkl_families  # the scan sees the datasets known to ship pickles
    assert pkl_families <= safe_families, f"reading .pkl files without safe_pickle: {pkl_families - safe_families}"
    record("untrusted", check="datasets read pickles through safe_pickle", files_scanned=len(files))


# ------------------------------------------------------------------------------------------------ posebank's formats
def pickle_free_hdf5(path: Path) -> int:
    """The number of datasets of ``path`` after checking that none has an object, variable-length, reference or
    opaque dtype (what h5py would need Python objects or pickles for) and no attribute holds pickled bytes."""
    problems, count = [], 0

    def attrs_of(name, obj):
        for key, value in obj.attrs.items():
            raw = value if isinstance(value, bytes) else value.tobytes() if isinstance(value, np.ndarray) and \
                value.dtype.kind in "SV" else b""
            if isinstance(value, np.ndarray) and value.dtype.kind == "O":
                problems.append(f"{name}@{key}: object attribute")
            if raw.startswith(b"\x80"):  # a pickle's PROTO opcode
                problems.append(f"{name}@{key}: pickled bytes")

    def visit(name, obj):
        nonlocal count
        attrs_of(name, obj)
        if isinstance(obj, h5py.Dataset):
            count += 1
            dt = obj.dtype
            if dt.kind not in "biufcS" or h5py.check_dtype(vlen=dt) is not None or \
                    h5py.check_dtype(ref=dt) is not None:
                problems.append(f"{name}: dtype {dt}")

    with h5py.File(path, "r") as f:
        attrs_of("/", f)
        f.visititems(visit)
    assert not problems, (path, problems)
    return count


def test_caches_and_merges_hold_no_pickles(small5_caches, small5, record):
    """Every shard of the five small5 source caches and the merged file: plain numeric and fixed-length byte
    datasets only, and the JSON files beside them are JSON."""
    import json

    files = sorted(small5_caches.rglob("*.h5")) + [small5]
    assert len(files) >= 6
    datasets = sum(pickle_free_hdf5(p) for p in files)
    for index in small5_caches.rglob("index.json"):
        assert isinstance(json.loads(index.read_text()), dict), index
    record("untrusted", check="hdf5 without pickles", files_scanned=len(files), datasets_checked=datasets)


# HumanData (mmhuman3d's format, a consumer's): HumanData.dump is numpy.savez_compressed of a dict, so these entries
# are 0-d object arrays, pickled (src/posebank/exporting/humandata.py's docstring); every other entry is plain
HUMANDATA_PICKLED = {"smpl", "smplx", "meta", "misc"}


def npz_members(path: Path) -> dict[str, tuple[bool, bytes]]:
    """key -> (the array holds objects, the bytes after its .npy header: a pickle stream when it does)."""
    out = {}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            with zf.open(info) as f:
                version = np.lib.format.read_magic(f)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                    np.lib.format.read_array_header_2_0
                _shape, _order, dtype = read(f)
                out[info.filename.removesuffix(".npy")] = (dtype.hasobject, f.read())
    return out


def test_npz_exports_load_without_pickle(small5_caches, small5, tmp_path, record):
    """The SPIN / ReFit npz loads whole with ``allow_pickle=False``; the HumanData npz too except its documented
    dict entries, whose pickles the restricted unpickler reads with nothing but numpy's classes and builtins (so
    loading them could not run code); the barecat records are msgpack with no pickled (object) array."""
    import msgpack

    from posebank.core import safe_pickle
    from posebank.exporting import barecat_export, humandata, spin
    from posebank.exporting.common import run_export

    cache = small5_caches / "h36m_alljoints"
    m = run_export("spin", spin.export, cache, tmp_path / "spin", {"split": "train", "file": "h36m_train.npz"})
    with np.load(tmp_path / "spin" / m["summary"]["file"], allow_pickle=False) as z:
        n_spin = len(z.files)
        assert n_spin > 5 and all(z[k].dtype != object for k in z.files)
    m = run_export("humandata", humandata.export, small5, tmp_path / "hd", {})
    path = tmp_path / "hd" / m["summary"]["file"]
    members = npz_members(path)
    pickled = {k for k, (obj, _) in members.items() if obj}
    assert pickled and pickled == HUMANDATA_PICKLED & set(members), pickled
    with np.load(path, allow_pickle=False) as z:
        for key in z.files:
            if key in HUMANDATA_PICKLED:
                with pytest.raises(ValueError, match="allow_pickle"):
                    z[key]
            else:
                assert z[key].dtype != object, key
    for key in HUMANDATA_PICKLED & set(members):
        value = safe_pickle.load(path, data=members[key][1])  # the 0-d object array holding the dict
        assert value.shape == () and isinstance(value.item(), dict), key
    m = run_export("barecat", barecat_export.export, cache, tmp_path / "bc", {})
    shards = sorted((tmp_path / "bc").glob("annotations.barecat-shard-*"))
    assert shards
    records = arrays = 0

    def no_object_arrays(obj):
        nonlocal arrays
        if isinstance(obj, dict):
            if obj.get(b"nd") is True:  # msgpack-numpy's array; kind "O": its data is a pickle
                arrays += 1
                assert obj.get(b"kind") != b"O", obj
            for v in obj.values():
                no_object_arrays(v)
        elif isinstance(obj, (list, tuple)):
            for v in obj:
                no_object_arrays(v)

    for shard in shards:
        unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
        unpacker.feed(shard.read_bytes())
        for obj in unpacker:  # the shard is the records' bytes back to back
            no_object_arrays(obj)
            records += 1
    assert records > 0 and arrays > records  # every record holds arrays (bbox, joints, camera)
    record("untrusted", check="npz exports without pickle", files_scanned=3, keys_checked=n_spin + len(members),
           records_checked=records)


# ------------------------------------------------------------------------------------------------ raw pickles
class RunsCommand:
    """Unpickling this runs ``touch <marker>``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def test_a_hostile_3dpw_pickle_is_refused_by_the_convert_command(tmp_path, record):
    """``posebank convert tdpw`` over a raw tree whose test sequence file would run a shell command: exit status 2,
    one error line naming the file and the class, no traceback, no output folder, and the command never ran."""
    from posebank import datasets

    raw = datasets.get("tdpw").make_fixture(tmp_path / "raw", seed=0, n_frames=8)
    marker = tmp_path / "ran"
    evil = raw / "sequenceFiles" / "test" / "downtown_walking_00.pkl"
    evil.write_bytes(pickle.dumps({"sequence": "downtown_walking_00", "poses": [RunsCommand(marker)]}, protocol=2))
    out = tmp_path / "out" / "tdpw"
    command = [str(Path(sys.executable).parent / "posebank"), "convert", "tdpw", "--raw", str(raw), "--out", str(out)]
    r = subprocess.run([*command, "-q"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [line for line in r.stderr.splitlines() if line.strip()][-1:] and len(errors) == 1, r.stderr
    assert errors[0].startswith(f"error: {evil}: refused to unpickle posix.system"), errors
    assert not marker.exists()
    assert not out.parent.exists() or not any(out.parent.iterdir())
    # the file is really hostile: a plain unpickler (in a child process) runs the command
    subprocess.run([sys.executable, "-c", "import pickle, sys; pickle.loads(open(sys.argv[1], 'rb').read())",
                    str(evil)], check=True, timeout=60)
    assert marker.exists()
    record("untrusted", check="hostile raw pickle", files_scanned=1, errors=1)


# ------------------------------------------------------------------------------------------------ archives
def test_hostile_archives_through_the_fetch_path_write_nothing_outside(tmp_path, record):
    """COCO's fetch with downloads served from 127.0.0.1: an archive with a ``..`` member, one with an absolute
    member, and one with a symlink to a folder outside followed by a member written through it. Each download
    verifies, then the extraction refuses the archive naming it and the member, and nothing is written in the raw
    folder or anywhere outside it (the members of test_extract's good tree come before the hostile one)."""
    from posebank import datasets
    from posebank.core.settings import FetchParams
    from posebank.fetching.extract import ExtractError
    from posebank.fetching.resources import Resource
    from posebank.pipeline.fetch import fetch

    made, work, outside = tmp_path / "made", tmp_path / "work", tmp_path / "outside"
    for d in (made, work, outside):
        d.mkdir()
    link = tarfile.TarInfo("top/link")
    link.type, link.linkname = tarfile.SYMTYPE, str(outside)
    through = tarfile.TarInfo("top/link/evil")
    through.size = 0
    archives = {
        "traversal": (write_tar(made / "traversal.tar.gz", {**FILES, "../../evil": b"x"}), "../../evil"),
        "absolute": (write_zip(made / "absolute.zip", {**FILES, str(outside / "evil"): b"x"}), str(outside / "evil")),
        "symlink": (write_tar(made / "symlink.tar", FILES, [link, through]), "top/link"),
    }
    coco = datasets.get("coco")
    before = {p for p in tmp_path.rglob("*")}
    with LocalServer() as server:
        for case, (archive, member) in archives.items():
            data = archive.read_bytes()
            r = Resource(url=server.serve(f"/{archive.name}", Served(data)), filename=archive.name,
                         sha256=hashlib.sha256(data).hexdigest(), size=len(data))
            raw = work / case / "data" / "raw" / "coco"
            with pytest.raises(ExtractError) as e:
                fetch("coco", raw, coco.check_params({}), FetchParams(downloads=str(work / case / "downloads")),
                      resources=[r], backoff_s=0)
            message = str(e.value)
            assert str(work / case / "downloads" / "coco" / archive.name) in message, message
            assert repr(member) in message and "refused" in message and "nothing was extracted" in message, message
            assert not raw.exists() or not any(raw.rglob("*")), case
            written = {p.relative_to(work / case).as_posix() for p in (work / case).rglob("*")}
            # the verified download and its lock file; the raw folder's parents (made before extracting) empty
            assert written == {"downloads", "downloads/coco", f"downloads/coco/{archive.name}",
                               f"downloads/coco/.{archive.name}.lock", "data", "data/raw"} | (
                {"data/raw/coco"} if raw.exists() else set()), (case, written)
    assert not any(outside.iterdir())
    assert {p for p in tmp_path.rglob("*")} - before <= {p for p in work.rglob("*")}  # nothing new elsewhere
    assert not (tmp_path / "evil").exists() and not (REPO / "evil").exists()
    record("untrusted", check="hostile archives through fetch", files_scanned=len(archives), errors=len(archives))


# ------------------------------------------------------------------------------------------------ credentials
def repository_files() -> list[Path]:
    """Every file git tracks, and the untracked ones it does not ignore (what the next commit could add)."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                         capture_output=True, check=True).stdout
    return sorted({REPO / name.decode() for name in out.split(b"\0") if name})


SECRETS = {
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "private key": re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----"),
    "GitHub token": re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    # user:password@ in a URL; the value is the password
    "URL with a password": re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@'\"<>{}]+:([^/\s@'\"<>{}]+)@", re.I),
    # key = "value" / key: "value" / "key": "value" (Python, YAML, JSON, INI); the value is the secret
    "secret assignment": re.compile(
        r"(?i)\b(?:aws_secret_access_key|secret_access_key|aws_session_token|secret_key|password|passwd|token|"
        r"api_?key|client_secret)\b[\"']?\s*[:=]\s*[\"']([^\"'\s]+)[\"']"),
}
# in configuration files (YAML, INI, .env, Makefile: anything but Python, where an unquoted value is an expression),
# an unquoted value: `password: hunter22`, `export AWS_SECRET_ACCESS_KEY=...`
CONFIG_SECRET = re.compile(
    r"(?im)^[ \t]*(?:export[ \t]+)?[\"']?(?:aws_secret_access_key|secret_access_key|aws_session_token|secret_key|"
    r"password|passwd|token|api_?key|client_secret)[\"']?[ \t]*[:=][ \t]*([^\s\"'#{}$<>()\[\],]{6,})[ \t]*$")
# exact values allowed, with why
ALLOWED_SECRETS = {
    "posebank-test-secret": "the moto S3 server's test credentials (tests/registry/test_registry.py); moto on "
                            "127.0.0.1 accepts any key, no account is behind it",
    "PASSWORD": "a placeholder in docs/operations.md's example metadata DB URLs",
}


def test_the_repository_holds_no_credentials(record):
    """Every text file git tracks (and the untracked ones it would add) is free of AWS keys, private keys, tokens,
    URLs with a password and secret-looking assignments, but for the allowed test-only values; the Airflow home
    where `make airflow` keeps its generated password is ignored."""
    files = repository_files()
    hits, scanned = [], 0
    for path in files:
        if not path.is_file() or path.is_symlink():
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary (images, HDF5 samples)
        scanned += 1
        text = data.decode("utf-8", "replace")
        patterns = SECRETS if path.suffix == ".py" else {**SECRETS, "secret in a config file": CONFIG_SECRET}
        for kind, pattern in patterns.items():
            for m in pattern.finditer(text):
                value = m.group(m.lastindex or 0)
                if value in ALLOWED_SECRETS:
                    continue
                line = text.count("\n", 0, m.start()) + 1
                hits.append(f"{path.relative_to(REPO)}:{line}: {kind}")
    assert not hits, hits
    assert scanned > 200  # the whole repository was read, not an empty list
    # the scanner finds what it looks for (spelled in pieces so that this file holds none of them)
    key, begin = "AKIA" + "ABCDEFGHIJ234567", "-----BEGIN " + "RSA PRIVATE KEY-----"
    probes = [key, begin, 'password = "' + 'hunter2"', "s3://me:" + "s3cr3t@bucket", "aws_secret_access_key" +
              ': "abc/def"']
    assert all(any(p.search(s) for p in SECRETS.values()) for s in probes)
    assert CONFIG_SECRET.search("lab:\n  password: " + "hunter22\n") and CONFIG_SECRET.search(
        "export AWS_SECRET_ACCESS_KEY=" + "wJalrXUtnFEMIK7MDENG\n")
    # the Airflow home, where `make airflow` keeps its generated password, is ignored by git
    for name in (".airflow/simple_auth_manager_passwords.json.generated", ".airflow/airflow.db"):
        r = subprocess.run(["git", "check-ignore", "-q", name], cwd=REPO)
        assert r.returncode == 0, f"{name} is not ignored by .gitignore"
    record("untrusted", check="no credentials", files_scanned=scanned)


# ------------------------------------------------------------------------------------------------ listening addresses
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# the host is the first element of the address tuple these get first (socket.bind: only a tuple, else not a socket)
ADDRESS_FIRST = {"HTTPServer", "ThreadingHTTPServer", "TCPServer", "ThreadingTCPServer", "UDPServer", "WSGIServer",
                 "create_server", "bind"}
# the host is this keyword; the value is what a missing keyword means
HOST_KEYWORD = {"ThreadedMotoServer": ("ip_address", "0.0.0.0"), "uvicorn.run": ("host", "127.0.0.1"),
                "uvicorn.Config": ("host", "127.0.0.1"), "asyncio.start_server": ("host", None),
                "aiohttp.web.run_app": ("host", "0.0.0.0")}
HOST_SETTINGS = re.compile(r"^(AIRFLOW__\w*HOST\w*|--host|--hostname|--bind|--remote-debugging-address)=?(.*)$")
WILDCARDS = ("0.0.0.0", "::", "[::]", "")


def server_hosts(path: Path) -> list[tuple[int, str, str]]:
    """(line, what, host) of every server bind in ``path``: the address a server class, ``socket.bind``,
    ``create_server`` or ``uvicorn.run`` gets, the Airflow / command-line host settings written as strings, and
    any wildcard address written as a URL or ``host:port``. A host that is not a literal is shown as its code."""
    tree = ast.parse(path.read_text(), str(path))
    names = import_names(tree)
    out = []

    def host_of(node) -> str:
        return node.value if isinstance(node, ast.Constant) else f"<{ast.unparse(node)}>"

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            full = dotted(node.func, names) or ""
            last = node.func.attr if isinstance(node.func, ast.Attribute) else full.rsplit(".", 1)[-1]
            if last in ADDRESS_FIRST and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Tuple) and arg.elts:
                    out.append((node.lineno, last, host_of(arg.elts[0])))
                elif last != "bind":  # another object's bind (an ORM's, a signal's) takes no address
                    out.append((node.lineno, last, host_of(arg)))
            for name in (full, last):
                if name in HOST_KEYWORD:
                    kw, default = HOST_KEYWORD[name]
                    given = keyword(node, kw)
                    out.append((node.lineno, name, host_of(given) if given is not None else str(default)))
                    break
        elif isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values):
                if isinstance(k, ast.Constant) and isinstance(k.value, str) and HOST_SETTINGS.match(k.value):
                    out.append((node.lineno, k.value, host_of(v)))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            m = HOST_SETTINGS.match(node.value)
            if m and m.group(2):
                out.append((node.lineno, m.group(1), m.group(2)))
            for w in WILDCARDS[:3]:
                if re.search(rf"(?:^|//|@){re.escape(w)}(?::\d+|/|$)", node.value):
                    out.append((node.lineno, "an address in a string", w))
    return out


def test_every_server_in_the_code_binds_127_0_0_1(tmp_path, record):
    """src/, stages/, scripts/, dags/ and tests/: every server address, socket bind and host setting is a loopback
    literal, and no wildcard address (the empty host, every IPv4 or IPv6 interface) is written as a host or URL."""
    files = [p for p in python_files(*CODE_DIRS) if p.resolve() != THIS]  # this file names them to find them
    bad, binds = [], 0
    for path in files:
        for line, what, host in server_hosts(path):
            binds += 1
            if host not in LOOPBACK:
                bad.append(f"{path.relative_to(REPO)}:{line}: {what} {host!r}")
    assert not bad, bad
    assert binds >= 5  # the tests' servers and the Airflow service's settings were seen
    # the scanner is not blind: what it must flag
    probe = tmp_path / "probe.py"
    probe.write_text("import socket, uvicorn\nfrom moto.server import ThreadedMotoServer\n"
                     "socket.socket().bind(('', 0))\nThreadedMotoServer(port=0)\nuvicorn.run(app, host=h)\n"
                     f"u = 'http://{WILDCARDS[0]}:8080/'\nenv = {{'AIRFLOW__API__HOST': '{WILDCARDS[0]}'}}\n")
    flagged = sorted({(line, host) for line, _what, host in server_hosts(probe) if host not in LOOPBACK})
    assert flagged == [(3, ""), (4, WILDCARDS[0]), (5, "<h>"), (6, WILDCARDS[0]), (7, WILDCARDS[0])], flagged
    record("untrusted", check="binds in the code", files_scanned=len(files), binds_checked=binds)


def listening(port: int) -> set[str]:
    """The local addresses (as text) listening on TCP ``port`` (/proc/net/tcp and tcp6: every process's)."""
    import ipaddress
    import struct

    found = set()
    for table, size in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if fields[3] == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                # the kernel prints each 32-bit word in host order
                raw = b"".join(struct.pack("<I", struct.unpack(">I", raw[i:i + 4])[0]) for i in range(0, size, 4))
                found.add(str(ipaddress.ip_address(raw)))
    return found


def test_the_servers_the_tests_start_listen_on_127_0_0_1_only(record):
    """The moto S3 server as the registry tests start it and the download tests' HTTP server: the one listening
    socket on their port is 127.0.0.1's (the kernel's table, and psutil for this process agrees)."""
    import psutil
    from moto.server import ThreadedMotoServer

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    try:
        _host, moto_port = moto.get_host_and_port()
        with LocalServer() as http:
            http_port = http.httpd.server_address[1]
            ports = {"moto": moto_port, "http": http_port}
            seen = {name: listening(port) for name, port in ports.items()}
            mine = {c.laddr.port: c.laddr.ip for c in psutil.Process().net_connections(kind="inet")
                    if c.status == psutil.CONN_LISTEN}
    finally:
        moto.stop()
    assert seen == {"moto": {"127.0.0.1"}, "http": {"127.0.0.1"}}, seen
    assert {mine.get(p) for p in ports.values()} == {"127.0.0.1"}, mine
    record("untrusted", check="listening addresses", files_scanned=0, servers_checked=len(ports))

import json
import subprocess
import sys

from posebank.cli import main


def test_datasets_lists_h36m_implemented(capsys, tmp_path, monkeypatch):
    from posebank import datasets

    monkeypatch.setattr(datasets, "PLANNED", (*datasets.PLANNED, "notadataset"))  # a planned name, whichever
    (tmp_path / "empty.yaml").write_text("")
    assert main(["datasets", "--params", str(tmp_path / "empty.yaml")]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines()[1:]}
    for name in ("h36m", "tdhp", "tdhp_full", "tdhp_test", "muco_3dhp", "mupots", "surreal", "tdpw", "coco", "mpii",
                 "agora", "bedlam", "aist", "panoptic", "humbi", "sailvos", "jta", "tdpeople", "totalcapture",
                 "rich", "hspace", "umpm", "bmhad", "mads", "tdoh", "bml_movi", "gpa",
                 "aspset", "ikea", "fit3d", "chi3d", "humansc3d", "behave", "human4d", "spec"):
        assert rows[name] == "implemented", name
    assert rows["notadataset"] == "planned"


def test_fixture_convert_info_through_the_console_script(tmp_path):
    # the installed console script, as users and dvc.yaml call it
    posebank = [sys.executable, "-m", "posebank.cli"]
    params = tmp_path / "params.yaml"
    params.write_text("datasets:\n  h36m:\n    train_subjects: [1]\n    test_subjects: [9]\n")
    from posebank.datasets import h36m

    raw = h36m.make_fixture(tmp_path / "raw", seed=1, subjects=[1, 9], n_frames=66, cameras=h36m.CAMERA_IDS)
    out = tmp_path / "cache" / "h36m"
    r = subprocess.run([*posebank, "convert", "h36m", "--raw", str(raw), "--out", str(out), "--params",
                        str(params), "-q"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([*posebank, "info", str(out), "--json"], capture_output=True, text=True, check=True)
    info = json.loads(r.stdout)
    assert info["examples_per_split"]["test"] == 2 * 2 * 4  # frames 0 and 64, two sequences, four cameras
    assert info["joints"] == 17 and info["cameras"] == 8 and info["quarantine"] == []
    assert info["layout"] == "folder" and info["file"] == str(out) and (out / "index.json").is_file()
    shards = sorted(p.name for p in out.iterdir() if p.name != "index.json")
    assert info["shards"] == len(shards) >= 1 and all(name.endswith(".h5") for name in shards)
    assert info["size_bytes"] == sum(p.stat().st_size for p in out.iterdir())
    r = subprocess.run([*posebank, "info", str(out)], capture_output=True, text=True, check=True)
    assert "examples" in r.stdout and str(out) in r.stdout and "index.json" in r.stdout
    # the datasets table finds the cache folder under pipeline.cache
    listing = tmp_path / "listing.yaml"
    listing.write_text(f"pipeline:\n  cache: {out.parent}\n")
    r = subprocess.run([*posebank, "datasets", "--params", str(listing)], capture_output=True, text=True, check=True)
    rows = {line.split()[0]: line for line in r.stdout.splitlines()[1:]}
    assert str(out) in rows["h36m"] and str(out.parent / "tdhp") not in rows["tdhp"]
    # show's default cache is pipeline.cache/NAME, the folder
    sheet = tmp_path / "sheet.png"
    r = subprocess.run([*posebank, "show", "h36m", "--params", str(listing), "--out", str(sheet), "--per-split", "2"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert sheet.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = subprocess.run([*posebank, "show", "tdhp", "--params", str(listing), "--out", str(tmp_path / "none.png")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and f"error: {out.parent / 'tdhp'}: no such cache" in r.stderr, r.stderr


def test_errors_are_one_clear_line(tmp_path, capsys):
    (tmp_path / "empty.yaml").write_text("")
    assert main(["convert", "h36m", "--raw", str(tmp_path / "nope"), "--out", str(tmp_path / "o"),
                 "--params", str(tmp_path / "empty.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: h36m: raw dataset not found at") and err.count("\n") == 1
    assert main(["convert", "nosuch", "--raw", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "dataset 'nosuch': unknown; implemented: h36m" in capsys.readouterr().err
    (tmp_path / "bad.h5").write_bytes(b"nope")
    assert main(["info", str(tmp_path / "bad.h5")]) == 2
    assert "not an HDF5 file" in capsys.readouterr().err

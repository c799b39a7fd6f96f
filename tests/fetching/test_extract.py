"""Safe extraction (fetching/extract.py): real archives built here, good ones unpacked byte for byte, hostile ones
refused with nothing written inside or outside the target."""

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from posebank.fetching.extract import ExtractError, Limits, extract

FILES = {"top/a.txt": b"alpha\n", "top/sub/b.bin": bytes(range(256)) * 40, "top/empty.dat": b"", "c.txt": b"c"}
ROOMY = Limits(max_bytes=10**9, max_members=1000)


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def write_zip(path: Path, files: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("top/", b"")  # a folder entry, as zip tools write them
        for name, data in files.items():
            zf.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def tar_mode(path: Path) -> str:
    return {".gz": "w:gz", ".tgz": "w:gz", ".bz2": "w:bz2", ".xz": "w:xz"}.get(path.suffix, "w")


def write_tar(path: Path, files: dict[str, bytes], extra: list[tarfile.TarInfo] = ()) -> Path:
    with tarfile.open(path, tar_mode(path)) as tf:
        d = tarfile.TarInfo("./top")
        d.type = tarfile.DIRTYPE
        tf.addfile(d)  # "./" prefixes, as `tar -C dir .` writes them
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o4755  # a setuid bit that must not come through
            tf.addfile(info, io.BytesIO(data))
        for info in extra:
            tf.addfile(info)
    return path


@pytest.mark.parametrize("name", ["a.zip", "a.tar", "a.tar.gz", "a.tgz", "a.tar.bz2", "a.tar.xz"])
def test_good_archives_unpack_byte_for_byte(tmp_path, name):
    archive = tmp_path / name
    (write_zip if name.endswith(".zip") else write_tar)(archive, FILES)
    target = tmp_path / "raw"
    done = extract(archive, target, ROOMY)
    assert tree(target) == FILES
    assert (done.files, done.bytes) == (len(FILES), sum(map(len, FILES.values())))
    assert not any(p.stat().st_mode & stat.S_ISUID for p in target.rglob("*"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [name, "raw"]  # no temporary folder left


def test_an_existing_target_is_merged_into(tmp_path):
    target = tmp_path / "raw"
    (target / "top").mkdir(parents=True)
    (target / "top" / "mine.txt").write_bytes(b"kept")
    (target / "c.txt").write_bytes(b"old")
    extract(write_zip(tmp_path / "a.zip", FILES), target, ROOMY)
    assert tree(target) == {**FILES, "top/mine.txt": b"kept"}


def hostile_cases(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """archive -> (path, the member the error names)."""
    cases = {}
    cases["zip traversal"] = (write_zip(tmp_path / "t.zip", {**FILES, "top/../../evil": b"x"}), "top/../../evil")
    cases["zip absolute"] = (write_zip(tmp_path / "abs.zip", {**FILES, "/tmp/evil": b"x"}), "/tmp/evil")
    cases["zip symlink"] = (write_zip(tmp_path / "l.zip", FILES, links={"top/link": "../../outside"}), "top/link")
    cases["zip backslash"] = (write_zip(tmp_path / "b.zip", {**FILES, "..\\evil": b"x"}), "..\\evil")
    cases["tar traversal"] = (write_tar(tmp_path / "t.tar.gz", {**FILES, "../evil": b"x"}), "../evil")
    cases["tar absolute"] = (write_tar(tmp_path / "abs.tar", {**FILES, "/tmp/evil": b"x"}), "/tmp/evil")
    link = tarfile.TarInfo("top/link")
    link.type, link.linkname = tarfile.SYMTYPE, "../../outside"
    cases["tar symlink"] = (write_tar(tmp_path / "l.tar.gz", FILES, [link]), "top/link")
    hard = tarfile.TarInfo("top/hard")
    hard.type, hard.linkname = tarfile.LNKTYPE, "c.txt"
    cases["tar hardlink"] = (write_tar(tmp_path / "h.tar", FILES, [hard]), "top/hard")
    dev = tarfile.TarInfo("top/null")
    dev.type, dev.devmajor, dev.devminor = tarfile.CHRTYPE, 1, 3
    cases["tar device"] = (write_tar(tmp_path / "d.tar", FILES, [dev]), "top/null")
    fifo = tarfile.TarInfo("top/fifo")
    fifo.type = tarfile.FIFOTYPE
    cases["tar fifo"] = (write_tar(tmp_path / "f.tar.xz", FILES, [fifo]), "top/fifo")
    return cases


def test_hostile_members_are_refused_and_nothing_is_written(tmp_path):
    src = tmp_path / "archives"
    src.mkdir()
    for case, (archive, member) in hostile_cases(src).items():
        work = tmp_path / case.replace(" ", "_")
        target = work / "inside" / "raw"
        target.mkdir(parents=True)
        (target / "before.txt").write_bytes(b"untouched")
        with pytest.raises(ExtractError) as e:
            extract(archive, target, ROOMY)
        message = str(e.value)
        assert str(archive) in message and repr(member) in message and "refused" in message, (case, message)
        assert "nothing was extracted" in message
        assert tree(target) == {"before.txt": b"untouched"}, case  # the good members before it did not come in
        assert sorted(p.name for p in work.rglob("*")) == ["before.txt", "inside", "raw"], case
        assert not (tmp_path / "evil").exists() and not Path("/tmp/evil").exists()


def test_member_and_byte_limits(tmp_path):
    files = {f"f{i}.txt": b"0123456789" for i in range(5)}  # 5 members, 50 bytes
    for maker, name in ((write_zip, "a.zip"), (write_tar, "a.tar.gz")):
        archive = maker(tmp_path / name, files)  # + the top/ folder entry: 6 members
        target = tmp_path / f"raw_{name}"
        with pytest.raises(ExtractError, match=r"more than 5 members \(fetch\.max_members\)"):
            extract(archive, target, Limits(max_bytes=10**6, max_members=5))
        with pytest.raises(ExtractError, match=r"more than 49 uncompressed bytes \(fetch\.max_extract_gb\)"):
            extract(archive, target, Limits(max_bytes=49, max_members=100))
        assert not target.exists()
        extract(archive, target, Limits(max_bytes=50, max_members=6))  # exactly at the limits
        assert tree(target) == files


def test_a_file_where_the_target_has_a_folder_is_refused(tmp_path):
    target = tmp_path / "raw"
    (target / "c.txt").mkdir(parents=True)
    with pytest.raises(ExtractError, match=r"member 'c\.txt'.*is a folder, the archive has a file there"):
        extract(write_zip(tmp_path / "a.zip", FILES), target, ROOMY)
    assert not (target / "top").exists()


def test_corrupt_archives_are_refused(tmp_path):
    good = write_tar(tmp_path / "a.tar.gz", FILES).read_bytes()
    for name, data in (("cut.tar.gz", good[: len(good) // 2]), ("junk.zip", b"PK\x03\x04 not a zip"),
                       ("junk.tar.xz", b"not xz at all")):
        (tmp_path / name).write_bytes(data)
        target = tmp_path / f"raw_{name}"
        with pytest.raises(ExtractError, match="unreadable archive, truncated or corrupt.*nothing was extracted"):
            extract(tmp_path / name, target, ROOMY)
        assert not target.exists()

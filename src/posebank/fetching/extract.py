"""Safe extraction of downloaded archives (.zip, .tar, .tar.gz / .tgz, .tar.bz2, .tar.xz) into a raw folder.

Only regular files and folders are extracted, under names that stay inside the target: a member with an absolute
name, a ``..`` component, a backslash or a NUL in its name, and any symbolic link, hard link, device file or FIFO is
refused, as is an archive with more members or more uncompressed bytes than the limits (counted while extracting,
not only from the headers). Members are written into a temporary folder beside the target (in the target's parent,
so moving them is a rename) and moved into the target only when the whole archive has passed: a refused or corrupt
archive leaves the target as it was. File modes, owners and times from the archive are not applied (the files get
the process's umask), so no setuid bit or foreign owner comes in. Existing files of the target with a member's name
are replaced; a member whose name is a folder in the target (or the reverse) is refused.
"""

from __future__ import annotations

import dataclasses
import logging
import lzma
import os
import shutil
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from posebank.core.atomic import temp_dir
from posebank.core.errors import DataError

log = logging.getLogger(__name__)

CHUNK = 1 << 20
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
ARCHIVE_SUFFIXES = (".zip", *TAR_SUFFIXES)


class ExtractError(DataError):
    """An archive was refused or is unreadable; ``where`` names the archive (and the member)."""


@dataclasses.dataclass(frozen=True)
class Limits:
    """At most ``max_bytes`` uncompressed bytes and ``max_members`` members (files and folders) per archive."""

    max_bytes: int
    max_members: int


@dataclasses.dataclass(frozen=True)
class Extracted:
    """What an extraction wrote: files, folders, bytes."""

    files: int
    folders: int
    bytes: int


def is_archive(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def member_parts(archive: Path, name: str) -> tuple[str, ...]:
    """The path components of member ``name`` under the target (``.`` and empty components dropped); an
    ExtractError naming the archive and the member when the name could leave the target."""
    def refuse(why: str):
        raise ExtractError(f"{archive}: member {name!r}", f"refused: {why}; nothing was extracted")

    if "\x00" in name:
        refuse("a NUL character in its name")
    if "\\" in name:
        refuse("a backslash in its name (not a portable path; it could name a parent folder)")
    if name.startswith("/") or PurePosixPath(name).is_absolute():
        refuse("an absolute path")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        refuse("a '..' component (it would write outside the target folder)")
    if parts and len(parts[0]) >= 2 and parts[0][1] == ":":
        refuse("a drive letter (an absolute Windows path)")
    return parts


class _Writer:
    """Writes members below ``root`` (a fresh temporary folder) and keeps the counts against the limits."""

    def __init__(self, archive: Path, root: Path, limits: Limits):
        self.archive, self.root, self.limits = archive, root, limits
        self.members = self.files = self.folders = self.bytes = 0

    def count(self, name: str) -> None:
        self.members += 1
        if self.members > self.limits.max_members:
            raise ExtractError(f"{self.archive}: member {name!r}", f"refused: more than {self.limits.max_members} "
                               "members (fetch.max_members); nothing was extracted")

    def too_large(self, name: str) -> ExtractError:
        return ExtractError(f"{self.archive}: member {name!r}", f"refused: more than {self.limits.max_bytes} "
                            "uncompressed bytes (fetch.max_extract_gb); nothing was extracted")

    def add_bytes(self, name: str, n: int) -> None:
        self.bytes += n
        if self.bytes > self.limits.max_bytes:
            raise self.too_large(name)

    def folder(self, name: str, parts: tuple[str, ...]) -> None:
        if parts:
            dest = self.root.joinpath(*parts)
            try:
                dest.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                raise ExtractError(f"{self.archive}: member {name!r}", "refused: a file of the archive has that "
                                   "name; nothing was extracted") from None
            self.folders += 1

    def file(self, name: str, parts: tuple[str, ...], source, declared: int | None) -> None:
        if not parts:
            raise ExtractError(f"{self.archive}: member {name!r}", "refused: a file without a name")
        if declared is not None and self.bytes + declared > self.limits.max_bytes:
            raise self.too_large(name)  # from the header, before writing it
        dest = self.root.joinpath(*parts)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            with open(dest, "wb") as out:
                while chunk := source.read(CHUNK):
                    self.add_bytes(name, len(chunk))
                    out.write(chunk)
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            raise ExtractError(f"{self.archive}: member {name!r}", "refused: a folder and a file of the archive "
                               "have that name; nothing was extracted") from None
        self.files += 1


def _zip_type(info: zipfile.ZipInfo) -> str | None:
    """The kind of a zip member that is neither a file nor a folder (from its Unix mode), else None."""
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if kind in (0, stat.S_IFREG, stat.S_IFDIR):
        return None
    return {stat.S_IFLNK: "a symbolic link", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
            stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket"}.get(kind, f"an entry of type {oct(kind)}")


def _extract_zip(archive: Path, writer: _Writer) -> None:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        # the central directory lists every member up front: refuse before writing anything
        declared = 0
        for info in infos:
            writer.count(info.filename)
            member_parts(archive, info.filename)
            kind = _zip_type(info)
            if kind is not None:
                raise ExtractError(f"{archive}: member {info.filename!r}", f"refused: {kind}; nothing was extracted")
            declared += info.file_size
            if declared > writer.limits.max_bytes:
                raise writer.too_large(info.filename)
        writer.members = 0
        for info in infos:
            writer.count(info.filename)
            parts = member_parts(archive, info.filename)
            if info.is_dir():
                writer.folder(info.filename, parts)
                continue
            with zf.open(info) as source:
                writer.file(info.filename, parts, source, None)


_TAR_KINDS = {tarfile.SYMTYPE: "a symbolic link", tarfile.LNKTYPE: "a hard link", tarfile.CHRTYPE:
              "a character device", tarfile.BLKTYPE: "a block device", tarfile.FIFOTYPE: "a FIFO"}


def _extract_tar(archive: Path, writer: _Writer) -> None:
    # stream mode: one pass over the (compressed) file, no seeking back
    with tarfile.open(archive, "r|*") as tf:
        for member in tf:
            tf.members = []  # stream mode keeps every header otherwise (millions of members)
            writer.count(member.name)
            parts = member_parts(archive, member.name)
            if member.isdir():
                writer.folder(member.name, parts)
            elif member.isreg():
                source = tf.extractfile(member)
                writer.file(member.name, parts, source, member.size)
            else:
                kind = _TAR_KINDS.get(member.type, f"a member of type {member.type!r}")
                link = f" to {member.linkname!r}" if member.issym() or member.islnk() else ""
                raise ExtractError(f"{archive}: member {member.name!r}", f"refused: {kind}{link}; nothing was "
                                   "extracted")


def _conflicts(src: Path, dst: Path, rel: PurePosixPath, archive: Path) -> None:
    """ExtractError when a member would replace a folder of the target by a file or the reverse."""
    for entry in src.iterdir():
        target = dst / entry.name
        if not os.path.lexists(target):
            continue
        if entry.is_dir() and not target.is_dir():
            raise ExtractError(f"{archive}: member {str(rel / entry.name)!r}", f"refused: {target} is a file, the "
                               "archive has a folder there; nothing was extracted")
        if not entry.is_dir() and target.is_dir():
            raise ExtractError(f"{archive}: member {str(rel / entry.name)!r}", f"refused: {target} is a folder, the "
                               "archive has a file there; nothing was extracted")
        if entry.is_dir():
            _conflicts(entry, target, rel / entry.name, archive)


def _move_into(src: Path, dst: Path) -> None:
    """Move the contents of ``src`` into ``dst`` (same file system: renames), merging folders."""
    dst.mkdir(parents=True, exist_ok=True)
    for entry in src.iterdir():
        target = dst / entry.name
        if entry.is_dir() and target.is_dir():
            _move_into(entry, target)
        else:
            os.replace(entry, target)


def extract(archive, target, limits: Limits) -> Extracted:
    """Extract ``archive`` into the folder ``target`` (created when missing) under the rules of the module
    docstring; returns the counts. Nothing is written into ``target`` unless the whole archive passes."""
    archive, target = Path(archive), Path(target)
    name = archive.name.lower()
    if not is_archive(name):
        raise ExtractError(archive, f"not an archive posebank extracts ({', '.join(ARCHIVE_SUFFIXES)})")
    if target.exists() and not target.is_dir():
        raise ExtractError(target, "is not a folder")
    with temp_dir(beside=target) as tmp:
        writer = _Writer(archive, tmp / "members", limits)
        writer.root.mkdir()
        try:
            if name.endswith(".zip"):
                _extract_zip(archive, writer)
            else:
                _extract_tar(archive, writer)
        except OSError as e:
            if e.errno is None:  # gzip / bz2 decoding errors
                raise ExtractError(archive, f"unreadable archive, truncated or corrupt ({e}); nothing was "
                                   "extracted") from None
            raise ExtractError(archive, f"cannot extract ({e.strerror or e}); nothing was extracted") from None
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, ValueError) as e:
            raise ExtractError(archive, f"unreadable archive, truncated or corrupt ({e.__class__.__name__}: {e}); "
                               "nothing was extracted") from None
        if target.is_dir():
            _conflicts(writer.root, target, PurePosixPath(), archive)
        _move_into(writer.root, target)
    log.info("%s: %d files, %d folders, %d bytes extracted into %s", archive.name, writer.files, writer.folders,
             writer.bytes, target)
    return Extracted(writer.files, writer.folders, writer.bytes)


def place(file, target, name: str) -> Path:
    """Copy a downloaded file that is not unpacked to ``<target>/<name>`` (atomically: a temporary copy renamed)."""
    from posebank.core.atomic import atomic_path

    dest = Path(target) / name
    with atomic_path(dest) as tmp:
        shutil.copyfile(file, tmp)
    return dest

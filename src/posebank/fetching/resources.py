"""One direct download of a dataset's raw files, and how a dataset module lists them.

A dataset module may define ``RESOURCES``: the files its authors publish at a direct URL for which a public source
lists a checksum, each a :class:`Resource`. Most datasets ask for a registration and have none; their modules may
define ``RAW_INSTRUCTIONS`` instead, a text saying what to download and where to put it. The checksums are never
computed from a download: each constant names the repository and file that published it.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
import re
import textwrap
from collections.abc import Sequence
from pathlib import PurePosixPath
from types import ModuleType
from urllib.parse import urlsplit

from posebank.core.errors import UsageError

_HEX = re.compile(r"^[0-9a-f]+$")
DIGEST_LENGTHS = {"sha256": 64, "md5": 32}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Resource:
    """A file to download into the downloads folder and, when ``extract``, to unpack into ``<raw>/<subdir>``
    (otherwise copied there under its name).

    Exactly one of ``sha256`` / ``md5`` is the published digest (lower-case hex); ``size`` the published size in
    bytes (None: not published). ``auth_env`` names the environment variables holding the user name and password
    for HTTP basic authentication of a licensed download."""

    url: str
    filename: str
    sha256: str = ""
    md5: str = ""
    size: int | None = None
    extract: bool = True
    subdir: str = ""
    auth_env: tuple[str, str] | None = None

    def __post_init__(self):
        scheme = urlsplit(self.url).scheme
        if scheme not in ("http", "https") or not urlsplit(self.url).netloc:
            raise ValueError(f"{self.url!r}: not an http(s) URL")
        if not self.filename or self.filename in (".", "..") or "/" in self.filename or "\\" in self.filename:
            raise ValueError(f"{self.filename!r}: a plain file name is needed")
        given = [alg for alg in DIGEST_LENGTHS if getattr(self, alg)]
        if len(given) != 1:
            raise ValueError(f"{self.filename}: exactly one of sha256, md5 is needed, got {given or 'none'}")
        digest = getattr(self, given[0])
        if len(digest) != DIGEST_LENGTHS[given[0]] or not _HEX.match(digest):
            raise ValueError(f"{self.filename}: {given[0]} must be {DIGEST_LENGTHS[given[0]]} lower-case hex digits")
        if self.size is not None and (isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0):
            raise ValueError(f"{self.filename}: size must be a number of bytes or None")
        sub = PurePosixPath(self.subdir)
        if self.subdir and (sub.is_absolute() or ".." in sub.parts or "\\" in self.subdir):
            raise ValueError(f"{self.filename}: subdir {self.subdir!r} must be a relative path inside the raw folder")
        if self.auth_env is not None:
            if len(self.auth_env) != 2 or not all(isinstance(v, str) and v for v in self.auth_env):
                raise ValueError(f"{self.filename}: auth_env must name two environment variables (user, password)")
            object.__setattr__(self, "auth_env", tuple(self.auth_env))

    @property
    def algorithm(self) -> str:
        """``sha256`` or ``md5``: the kind of the published digest."""
        return "sha256" if self.sha256 else "md5"

    @property
    def digest(self) -> str:
        return self.sha256 or self.md5

    def credentials(self) -> tuple[str, str] | None:
        """(user, password) from the ``auth_env`` variables; a UsageError naming those that are unset."""
        if self.auth_env is None:
            return None
        missing = [v for v in self.auth_env if not os.environ.get(v)]
        if missing:
            raise UsageError(f"{self.filename}", f"a licensed download: set the environment variable"
                             f"{'s' if len(missing) > 1 else ''} {' and '.join(missing)} to the user name and "
                             f"password of your account ({self.auth_env[0]} user, {self.auth_env[1]} password)")
        return os.environ[self.auth_env[0]], os.environ[self.auth_env[1]]


def resources_of(module: ModuleType, params: dict | None) -> tuple[Resource, ...]:
    """A dataset module's ``RESOURCES`` for its checked ``params``: a sequence of :class:`Resource`, or a function
    of the params returning one (when the files depend on them, e.g. COCO's year and splits); () without any."""
    found = getattr(module, "RESOURCES", None)
    if found is None:
        return ()
    if callable(found):
        found = found(params)
    if not isinstance(found, Sequence) or not all(isinstance(r, Resource) for r in found):
        raise TypeError(f"{module.__name__}.RESOURCES must be a sequence of Resource (or a function returning one)")
    names = [r.filename for r in found]
    if len(set(names)) != len(names):
        raise TypeError(f"{module.__name__}.RESOURCES names a file twice: {names}")
    return tuple(found)


def instructions_of(module: ModuleType) -> str:
    """The module's ``RAW_INSTRUCTIONS``, else those of its family package (``posebank.datasets.<family>``, which
    the family's datasets share), dedented; "" without any."""
    text = getattr(module, "RAW_INSTRUCTIONS", None)
    if text is None and module.__name__.count(".") >= 3:
        package = importlib.import_module(module.__name__.rsplit(".", 1)[0])
        text = getattr(package, "RAW_INSTRUCTIONS", None)
    if text is None:
        return ""
    if not isinstance(text, str):
        raise TypeError(f"{module.__name__}.RAW_INSTRUCTIONS must be a str")
    return inspect.cleandoc(textwrap.dedent(text))

"""This process's resident memory, from /proc/self (Linux).

``peak_rss_mb`` is the high-water mark of the process's own address space (``VmHWM``), not ``ru_maxrss``: Linux
carries ``ru_maxrss`` over an ``exec`` from the process that spawned it (with ``vfork``, as Python's ``subprocess``
uses, the spawning process's whole peak), so a fresh interpreter started by a large process reports that
process's size; and a forked process starts with its parent's pages counted. Elsewhere both fall back to
``getrusage``.
"""

from __future__ import annotations

import os
import resource

MIB = 2**20


def rss_mb() -> float:
    """Resident memory now, MiB."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MIB
    except (OSError, ValueError, IndexError):
        return 0.0


def peak_rss_mb() -> float:
    """The highest resident memory of this process's own address space so far, MiB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

"""posebank.core.memory: a process's own peak, not the one Linux carries over from the process that spawned it."""

import json
import subprocess
import sys

import pytest

from posebank.core import memory

CHILD = ("import json, resource; from posebank.core import memory; "
         "print(json.dumps({'peak': memory.peak_rss_mb(), 'maxrss': "
         "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/status is Linux's")
def test_a_child_reports_its_own_peak_not_its_spawners():
    big = bytearray(400 * 2**20)  # 400 MiB resident in this process when it spawns the child
    big[::4096] = b"x" * len(big[::4096])
    assert memory.rss_mb() >= 400 and memory.peak_rss_mb() >= memory.rss_mb() - 1
    out = json.loads(subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                                    check=True).stdout)
    # ru_maxrss in the fresh interpreter already holds this process's size; VmHWM is the child's own (an
    # interpreter with numpy-free imports: well under 200 MiB)
    assert out["maxrss"] >= 400
    assert out["peak"] < 200
    del big


def test_the_peak_stays_after_memory_is_given_back():
    block = bytearray(256 * 2**20)
    block[::4096] = b"y" * len(block[::4096])
    touched = memory.rss_mb()
    del block  # a large block is unmapped at once
    assert memory.rss_mb() < touched - 200
    assert memory.peak_rss_mb() >= touched - 1

"""Reading source blocks ahead of the merge: the rows of each source selected by split, block by block, in another
process (or, where a process cannot be forked, a thread).

A merge reads every source cache (HDF5 decompression) while it filters and writes the merged file (HDF5
compression). h5py holds the interpreter lock during both, so a reader *thread* only interleaves with the writer;
a forked reader *process* runs beside it on another core: measured on the merge benchmark (huge8's 30 synthetic
sources, 200k examples, 2 cores), 1.3 s instead of 1.8 s with the thread. Memory stays bounded: at most
``depth`` blocks wait in the queue between the two processes.

The work is a list of :class:`BlockTask` (one per pass over one source); :class:`BlockStream` yields their blocks in
task order, and a reader error is raised in the merge with its type and message.
"""

from __future__ import annotations

import contextlib
import dataclasses
import mmap
import multiprocessing
import os
import pickle
import queue
import threading
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from posebank.core.memory import peak_rss_mb, rss_mb
from posebank.core.store import Cache

DEPTH = 2  # blocks read ahead of the merge
_END, _DONE, _ERROR = "end", "done", "error"
_POLL_S = 0.5  # how often a waiting merge checks that its reader process is alive


@dataclasses.dataclass(frozen=True)
class BlockTask:
    """One pass over one source cache: the rows whose split code is in ``wanted``, in blocks of ``block_rows``,
    with ``columns``; ``joint_index`` (when given) selects the joints of the per-joint columns."""

    path: Path
    wanted: tuple[int, ...]
    block_rows: int
    columns: tuple[str, ...]
    joint_index: tuple[int, ...] | None = None


JOINT_COLUMNS = ("world_coords", "visibility")


def source_blocks(cache: Cache, task: BlockTask) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
    """(source rows, columns) of the task's selected rows, block by block (empty blocks skipped)."""
    n = len(cache)
    wanted = np.asarray(task.wanted)
    joints = None if task.joint_index is None else np.asarray(task.joint_index, np.int64)
    for start in range(0, n, task.block_rows):
        stop = min(start + task.block_rows, n)
        keep = np.isin(cache.column("split", slice(start, stop)), wanted)
        if not keep.any():
            continue
        rows = np.flatnonzero(keep) + start
        every = keep.all()
        cols = {}
        for c in task.columns:
            v = cache.column(c, slice(start, stop))
            if not every:
                v = v[keep]
            if joints is not None and c in JOINT_COLUMNS:
                v = v[:, joints]
            cols[c] = v
        yield rows, cols


def task_items(tasks: Sequence[BlockTask]) -> Iterator[tuple]:
    """(task index, rows, columns) per block, then (task index, None, None) at the end of each task; a folder
    cache's shards are closed after its task (a merge reads many caches one after the other)."""
    caches: dict[Path, Cache] = {}
    try:
        for k, task in enumerate(tasks):
            cache = caches.get(task.path)
            if cache is None:  # read in order: two open shards suffice (each open file holds HDF5 caches)
                cache = caches[task.path] = Cache(task.path, max_open=2)
            try:
                for rows, cols in source_blocks(cache, task):
                    yield k, rows, cols
            finally:
                cache.release()
            yield k, None, None
    finally:
        for c in caches.values():
            c.close()


class _Reading:
    """An iterator over a reader's items whose ``close()`` always stops the reader (thread joined, process killed
    if unfinished and reaped), also when iteration never began: a generator's own ``finally`` would not run then."""

    def __init__(self, gen, halt):
        self._gen, self._halt = gen, halt

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._gen)

    def close(self) -> None:
        try:
            self._gen.close()
        finally:
            self._halt()


# ------------------------------------------------------------------------------------------ a reader thread
def read_ahead(items, depth: int = DEPTH):
    """Iterate ``items`` in a reader thread, at most ``depth`` items ahead of the consumer. The reader's exceptions
    are raised in the consumer; when the consumer stops early (an error while writing, ``close()``), the reader is
    told to stop, ``items`` is closed in the reader thread and the thread is joined before this returns."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def read():
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((end, None))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, raised there
            put((end, e))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    reader = threading.Thread(target=read, name="merge-read-ahead", daemon=True)
    reader.start()

    def halt():
        stop.set()
        reader.join()

    def consume():
        try:
            while True:
                item, error = q.get()
                if item is end:
                    if error is not None:
                        raise error
                    return
                yield item
        finally:
            halt()

    return _Reading(consume(), halt)


# ------------------------------------------------------------------------------------------ a reader process
def _portable_error(e: BaseException) -> BaseException:
    """``e`` if it survives pickling with its type and message, else a RuntimeError carrying its traceback."""
    try:
        back = pickle.loads(pickle.dumps(e))
        if type(back) is type(e) and str(back) == str(e):
            return e
    except Exception:  # noqa: BLE001 - any failure to pickle: fall back to the text
        pass
    return RuntimeError(f"merge reader process: {''.join(traceback.format_exception(e)).rstrip()}")


SLOTS_BYTES = 6 << 20  # one block's arrays (at most 8192 rows and 2^18 rows x joints: 4.7 MB at most)
_ALIGN = 64


class _Slots:
    """Shared memory between the merge and its forked reader: ``depth + 1`` slots of :data:`SLOTS_BYTES` in one
    anonymous shared mapping (made before the fork, so both processes see it). The reader copies a block's arrays
    into a free slot and sends only their layout; the merge reads them in place and frees the slot when it asks
    for the next block: no pickling or pipe copy of the data."""

    def __init__(self, n: int, size: int = SLOTS_BYTES):
        self.n, self.size = n, size
        self.mem = mmap.mmap(-1, n * size)
        # touched once, before the fork: the slots are resident from the start in both processes (shared pages,
        # counted once), whatever size the blocks of a given merge reach
        np.frombuffer(self.mem, np.uint8)[:] = 0

    def put(self, slot: int, arrays: dict[str, np.ndarray]) -> list | None:
        """Copy ``arrays`` into ``slot``; their layout, or None when they do not fit (then they go pickled)."""
        layout, offset = [], 0
        for name, a in arrays.items():
            a = np.ascontiguousarray(a)
            if offset + a.nbytes > self.size:
                return None
            layout.append((name, offset, a.dtype.str, a.shape))
            offset += -(-a.nbytes // _ALIGN) * _ALIGN
        for (_name, off, _dt, _shape), a in zip(layout, arrays.values()):
            view = np.frombuffer(self.mem, np.uint8, a.nbytes, slot * self.size + off)
            view[:] = np.ascontiguousarray(a).reshape(-1).view(np.uint8)
        return layout

    def get(self, slot: int, layout: list) -> dict[str, np.ndarray]:
        out = {}
        for name, off, dtype, shape in layout:
            dt = np.dtype(dtype)
            count = int(np.prod(shape, dtype=np.int64))
            out[name] = np.frombuffer(self.mem, dt, count, slot * self.size + off).reshape(shape)
        return out


def _reader_main(tasks, q, free, slots: _Slots) -> None:  # the forked reader process
    int(np.frombuffer(slots.mem, np.uint8)[::mmap.PAGESIZE].sum())  # map the shared slots' pages in now
    start = rss_mb()  # the pages it shares with the merge process (from the fork, the slots): counted in both
    try:
        for k, rows, cols in task_items(tasks):
            if rows is None:
                q.put((k, None, None))
                continue
            slot = free.get()
            layout = slots.put(slot, {"": rows, **cols})
            if layout is None:  # too large for a slot (not with the merge's block sizes): sent pickled
                free.put(slot)
                q.put((k, -1, (rows, cols)))
            else:
                q.put((k, slot, layout))
        q.put((_DONE, peak_rss_mb(), start))
    except BaseException as e:  # noqa: BLE001 - handed to the merge, raised there
        q.put((_ERROR, _portable_error(e), None))
    q.close()
    q.join_thread()


def read_ahead_process(tasks: Sequence[BlockTask], depth: int = DEPTH, info: dict | None = None):
    """:func:`task_items` in a forked reader process, at most ``depth`` blocks ahead, the blocks passed in shared
    memory (:class:`_Slots`). A block's arrays are valid until the consumer asks for the next one. ``info`` (if
    given) gets the reader's peak RSS (MiB) at the end, and its RSS when it started (the pages it shares with the
    merge process from the fork). When the consumer stops early, the reader is killed and
    reaped."""
    ctx = multiprocessing.get_context("fork")
    slots = _Slots(depth + 1)
    q, free = ctx.Queue(), ctx.Queue()
    for i in range(slots.n - 1):  # one slot stays with the consumer: the block it is working on
        free.put(i)
    proc = ctx.Process(target=_reader_main, args=(list(tasks), q, free, slots), name="posebank-merge-reader",
                       daemon=True)
    proc.start()

    state = {"finished": False}

    def halt():
        if not state["finished"] and proc.is_alive():
            proc.kill()
        proc.join()
        for qq in (q, free):
            qq.close()
            with contextlib.suppress(Exception):
                qq.join_thread()

    def consume():
        held = slots.n - 1  # the slot the consumer's current block is in
        try:
            while True:
                try:
                    item = q.get(timeout=_POLL_S)
                except queue.Empty:
                    if not proc.is_alive():
                        raise RuntimeError(f"merge reader process died (exit code {proc.exitcode})") from None
                    continue
                if item[0] == _DONE:
                    if info is not None:
                        info["reader_peak_rss_mb"] = round(float(item[1]), 1)
                        info["reader_start_rss_mb"] = round(float(item[2]), 1)
                    state["finished"] = True
                    return
                if item[0] == _ERROR:
                    raise item[1]
                k, slot, payload = item
                if slot is None:
                    yield k, None, None
                elif slot < 0:
                    yield k, *payload
                else:
                    free.put(held)  # the previous block is done with: its slot goes back to the reader
                    held = slot
                    arrays = slots.get(slot, payload)
                    rows = arrays.pop("")
                    yield k, rows, arrays
        finally:
            halt()

    return _Reading(consume(), halt)


def can_fork() -> bool:
    """A reader process helps only where fork exists and the merge may use more than one core."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return False
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity API: the machine's count
        cores = os.cpu_count() or 1
    return cores > 1


class BlockStream:
    """The blocks of ``tasks`` in order: ``for rows, cols in stream.task(k)`` for k = 0, 1, ... ``mode``:
    ``"process"``, ``"thread"`` or ``"auto"`` (a process where :func:`can_fork`). Use as a context manager."""

    def __init__(self, tasks: Sequence[BlockTask], mode: str = "auto", depth: int = DEPTH):
        if mode not in ("auto", "process", "thread"):
            raise ValueError(f"reader mode {mode!r}: auto, process or thread")
        self.mode = ("process" if can_fork() else "thread") if mode == "auto" else mode
        self.info: dict = {"reader": self.mode}
        self._items = (read_ahead_process(tasks, depth, self.info) if self.mode == "process"
                       else read_ahead(task_items(tasks), depth))
        self._next, self._n = 0, len(tasks)

    def task(self, k: int) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
        if k != self._next:
            raise ValueError(f"task {k} read out of order (next is {self._next})")
        for j, rows, cols in self._items:
            if j != k:
                raise RuntimeError(f"merge reader out of step: block of task {j} while reading task {k}")
            if rows is None:
                self._next += 1
                return
            yield rows, cols
        raise RuntimeError(f"merge reader ended before task {k} did")

    def close(self) -> None:
        if self._next == self._n:  # every task read: let the reader finish (and report) rather than stop it
            for _ in self._items:
                raise RuntimeError("merge reader sent more blocks than its tasks hold")
        self._items.close()

    def __enter__(self) -> BlockStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

"""Arrays kept in files on disk and mapped into memory, for analyses larger than the memory they may hold.

An analysis of a large folder holds one frame of the visits' columns from
the first table to the last (about 50 bytes a visit: 1.9 GB for 3.7 x 10^7
visits), while each step reads only a few of its columns, or one arm's rows
of them.  :class:`Spill` holds such columns in files, each mapped into the
process (``mmap``, shared): a numpy array over the mapping is an ordinary
array (the same values, dtype and layout, written and read in place), but
its pages belong to the kernel's page cache, not to the process's own
memory.  :meth:`Spill.release` unmaps the pages read from the process
(``madvise(MADV_DONTNEED)``: for a shared file mapping the data stay in the
file and the page cache, and are mapped again, without reading the disk
while the page cache holds them, on the next access); inside ``with
spill:`` a thread of the spill does so every :attr:`Spill.every_s`
seconds (and gives the C heap's free pages back to the system, glibc's
``malloc_trim``), so the process's resident memory holds its own arrays
and the pages of the spill read in the last fraction of a second, not the
whole frame.  Where memory is short (a container's
limit, a busy machine) the kernel writes the pages to the file and drops
them, as it would any file's, instead of failing: the analysis runs in a
bounded amount of memory, reading the columns back from disk as it needs
them.

The files are created in ``directory`` (default :func:`tempfile.gettempdir`,
which honours ``TMPDIR``) and unlinked at once: they take disk space only
while their arrays live, and nothing is left behind, however the process
ends.  The directory should be on a disk, not in memory (a ``tmpfs``
``/tmp`` holds its files in memory, which the kernel cannot drop without
swap): :func:`in_memory` tells.
"""
from __future__ import annotations

import mmap
import os
import tempfile
import threading
import warnings
import weakref
from typing import Any

import numpy as np


class Spill:
    """Arrays in unlinked files of ``directory``, mapped into memory; :meth:`release` unmaps the pages read,
    and so does a thread of the spill every ``every_s`` seconds inside ``with spill:``."""

    def __init__(self, directory: str | os.PathLike[str] | None = None, every_s: float = 0.25) -> None:
        self.directory = os.fspath(directory) if directory is not None else tempfile.gettempdir()
        self.every_s = float(every_s)
        #: the mappings of the arrays handed out (each lives while an array or view over it does)
        self._maps: list[weakref.ref[mmap.mmap]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pager: threading.Thread | None = None
        #: bytes handed out
        self.nbytes = 0
        self._full = False  # (the directory once had no room: said once)

    def __enter__(self) -> Spill:
        """Start the thread that unmaps the pages read every :attr:`every_s` seconds."""
        if self._pager is None:
            self._stop.clear()
            self._pager = threading.Thread(target=self._page, name="fomolab-spill", daemon=True)
            self._pager.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop that thread (the arrays stay valid)."""
        if self._pager is not None:
            self._stop.set()
            self._pager.join()
            self._pager = None

    def _page(self) -> None:
        trim = _malloc_trim()
        while not self._stop.wait(self.every_s):
            self.release()
            if trim is not None:
                trim(0)

    def empty(self, n: int, dtype: Any) -> np.ndarray:
        """An uninitialised array of ``n`` values of ``dtype`` (zeros, in fact: a new file's) in a file of
        its own; ``numpy.empty(n, dtype)`` for an empty one, and (with a :class:`ResourceWarning`, once)
        where the directory has no room for it."""
        dtype = np.dtype(dtype)
        size = int(n) * dtype.itemsize
        if size == 0 or dtype.hasobject:
            return np.empty(n, dtype)
        fd, path = tempfile.mkstemp(prefix="fomolab-spill-", dir=self.directory)
        try:
            os.unlink(path)  # (the mapping keeps the file until the last array over it goes)
            try:
                # the file's blocks taken now: a page written to a mapping whose file has no room for it would
                # kill the process (SIGBUS); a full disk is an error here instead
                reserve = getattr(os, "posix_fallocate", None)
                if reserve is not None:
                    reserve(fd, 0, size)
                else:
                    os.ftruncate(fd, size)
            except OSError as e:
                if not self._full:
                    warnings.warn(f"{self.directory}: no room on disk for {size / 2**20:,.0f} MB of the visits' "
                                  f"columns ({e.strerror}): they are kept in memory (give a directory on a disk "
                                  "with room: TMPDIR)", ResourceWarning, stacklevel=2)
                    self._full = True
                return np.empty(n, dtype)
            m = mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
            os.close(fd)
        with self._lock:
            self._maps = [r for r in self._maps if r() is not None]
            self._maps.append(weakref.ref(m))
            self.nbytes += size
        return np.frombuffer(m, dtype=dtype, count=n)

    def release(self) -> None:
        """Unmap the pages of every array of the spill from this process (their values stay: read again,
        from the page cache or the file, on the next access)."""
        with self._lock:
            maps = [m for m in (r() for r in self._maps) if m is not None]
        for m in maps:
            # (a shared file mapping: the pages written are the file's, kept dirty in the page cache, never lost;
            # a thread reading or writing one meanwhile maps it again)
            m.madvise(mmap.MADV_DONTNEED)
        del maps


def _malloc_trim() -> Any:
    """glibc's ``malloc_trim`` (None elsewhere): it gives the free pages of the C heap back to the system.

    numpy allocates arrays under 32 MB from the C heap; once freed, their
    pages stay in the process (and in its resident memory) until the heap
    is trimmed: 150 to 300 MB between the steps of a large analysis.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        fn = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None
    if fn is not None:
        fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
    return fn


def usable(directory: str | os.PathLike[str] | None = None) -> bool:
    """Whether a :class:`Spill` in ``directory`` (default the temporary directory) keeps its arrays out
    of memory: this system maps files shared and unmaps their pages (``madvise``), and the directory is
    on a disk."""
    if not (hasattr(mmap, "MAP_SHARED") and hasattr(mmap, "MADV_DONTNEED") and hasattr(mmap.mmap, "madvise")):
        return False
    return not in_memory(directory if directory is not None else tempfile.gettempdir())


def in_memory(directory: str | os.PathLike[str]) -> bool:
    """Whether ``directory`` lies on a file system held in memory (``tmpfs``, ``ramfs``: Linux's
    ``/proc/mounts``; False where that cannot be read)."""
    try:
        with open("/proc/mounts", encoding="utf-8") as f:
            mounts = [line.split() for line in f]
    except OSError:
        return False
    path = os.path.realpath(os.fspath(directory))
    best, kind = "", ""
    for fields in mounts:
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        if (path == point or path.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind in ("tmpfs", "ramfs")

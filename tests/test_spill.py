"""Arrays kept in files mapped into memory: the values of in-memory arrays, out of the process's resident
memory once unmapped, never lost while a thread unmaps them; and an analysis that keeps its visits there
gives the tables of one that keeps them in memory."""

from __future__ import annotations

import mmap
import os
import sys
import threading

import numpy as np
import pandas as pd
import pytest

from fomolab import _spill
from fomolab._spill import Spill, in_memory, usable

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
#: shared file mappings whose pages can be unmapped (not on Windows)
mappable = pytest.mark.skipif(not hasattr(mmap, "MADV_DONTNEED") or not hasattr(mmap, "MAP_SHARED"),
                              reason="no shared mappings with madvise")


def mapped(values: np.ndarray) -> bool:
    """Whether ``values`` is an array over a memory-mapped file."""
    base = values
    while getattr(base, "base", None) is not None and not isinstance(base, memoryview):
        base = base.base
    return isinstance(base, memoryview) and isinstance(base.obj, mmap.mmap)


def resident_file_mb() -> float:
    """This process's resident pages of mapped files (MB)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssFile:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no RssFile")


@mappable
def test_spilled_arrays_hold_values_as_arrays_do(tmp_path):
    s = Spill(tmp_path)
    a = s.empty(1000, np.float64)
    assert a.dtype == np.float64 and a.shape == (1000,) and a.flags.writeable and a.flags.c_contiguous
    assert mapped(a) and s.nbytes == 8000
    a[:] = np.arange(1000) / 7
    view = a[10:20]
    view *= 2  # written through a view: the same memory
    want = np.arange(1000) / 7
    want[10:20] *= 2
    np.testing.assert_array_equal(a, want)
    b = s.empty(12, np.int16)
    b[:] = np.arange(12)
    assert b.dtype == np.int16 and mapped(b) and s.nbytes == 8024
    np.testing.assert_array_equal(b, np.arange(12))
    assert os.listdir(tmp_path) == []  # the files are unlinked at once: nothing is left behind
    # nothing to map: plain arrays
    assert not mapped(s.empty(0, np.float64)) and not mapped(s.empty(3, object))


@linux
@mappable
def test_release_unmaps_the_pages_and_keeps_the_values(tmp_path):
    s = Spill(tmp_path)
    n = 16 * 2**20 // 8  # 16 MB
    a = s.empty(n, np.float64)
    a[:] = np.arange(n, dtype=np.float64)
    before = resident_file_mb()
    s.release()
    after = resident_file_mb()
    assert before - after > 15, (before, after)
    assert a[12345] == 12345.0 and float(a.sum()) == float(np.arange(n, dtype=np.float64).sum())


@linux
@mappable
def test_the_pager_thread_keeps_resident_pages_bounded_and_stops(tmp_path):
    n = 64 * 2**20 // 8
    base = resident_file_mb()  # (the libraries' mapped files)
    with Spill(tmp_path, every_s=0.001) as s:
        pager = s._pager
        assert pager is not None and pager.is_alive()
        a = s.empty(n, np.float64)
        for k in range(0, n, n // 64):  # written a megabyte at a time, the pager unmapping meanwhile
            a[k:k + n // 64] = k
            threading.Event().wait(0.002)
        assert resident_file_mb() - base < 24  # of the 64 MB written
    assert not pager.is_alive() and s._pager is None


@mappable
def test_nothing_written_is_lost_while_the_pager_unmaps_pages(tmp_path):
    rng = np.random.default_rng(3)
    n = 2**20
    start = rng.random(n)
    want = start * 3.0 / 7.0
    order = np.argsort(want, kind="stable")
    with Spill(tmp_path, every_s=0.0005) as s:
        a = s.empty(n, np.float64)
        b = s.empty(n, np.int32)
        for _ in range(4):  # writes, reads and writes again, while pages come and go
            a[:] = start
            a *= 3.0
            a /= 7.0
            b[:] = np.argsort(a, kind="stable")
            np.testing.assert_array_equal(a, want)
            np.testing.assert_array_equal(b, order)


@mappable
def test_a_full_disk_keeps_the_arrays_in_memory_with_a_warning(tmp_path, monkeypatch):
    import errno

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", full, raising=False)
    s = Spill(tmp_path)
    with pytest.warns(ResourceWarning, match="no room on disk"):
        a = s.empty(100, np.float64)
    assert not mapped(a) and a.shape == (100,)
    b = s.empty(100, np.int8)  # said once
    assert not mapped(b) and os.listdir(tmp_path) == []


def test_in_memory_file_systems_are_those_of_the_longest_mount_point(tmp_path, monkeypatch):
    mounts = tmp_path / "mounts"
    mounts.write_text("/dev/vda / ext4 rw 0 0\n"
                      "tmpfs /tmp tmpfs rw 0 0\n"
                      "/dev/vdb /tmp/disk ext4 rw 0 0\n"
                      "/dev/vdc /tmpdata ext4 rw 0 0\n"
                      "none /mnt/my\\040ram ramfs rw 0 0\n")
    real = open

    def fake(path, *args, **kwargs):
        return real(mounts if path == "/proc/mounts" else path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", fake)
    monkeypatch.setattr(os.path, "realpath", lambda p: p)
    assert in_memory("/tmp") and in_memory("/tmp/x/y") and in_memory("/mnt/my ram/z")
    assert not in_memory("/tmp/disk/x") and not in_memory("/tmpdata/x") and not in_memory("/home")
    assert not usable("/tmp/x") and usable("/tmpdata") == hasattr(mmap.mmap, "madvise")


@linux
def test_the_systems_own_memory_file_systems_are_told(tmp_path):
    with open("/proc/mounts") as f:
        mounts = f.read()
    assert not in_memory(tmp_path) or "tmpfs" in mounts
    if " /dev/shm tmpfs " in mounts:
        assert in_memory("/dev/shm") and not usable("/dev/shm")


# -- the analysis --------------------------------------------------------------------------------------


def analyses(res, **kwargs):
    from fomolab.analysis import analyze

    return (analyze(res, side_process=False, spill=False, **kwargs).tables(),
            analyze(res, side_process=False, spill=True, **kwargs).tables())


def same_tables(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if a[k] is None:
            assert b[k] is None, k
        else:
            pd.testing.assert_frame_equal(a[k], b[k], check_exact=True, obj=k)


@pytest.fixture
def spied(monkeypatch):
    """Every :class:`Spill` made meanwhile; ``paged``: whether its pager thread ran."""
    made: list[Spill] = []
    init, enter = Spill.__init__, Spill.__enter__

    def track(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.paged = False
        made.append(self)

    def entered(self):
        out = enter(self)
        self.paged = self._pager is not None and self._pager.is_alive()
        return out

    monkeypatch.setattr(Spill, "__init__", track)
    monkeypatch.setattr(Spill, "__enter__", entered)
    return made


@pytest.mark.skipif(not usable(), reason="the temporary directory cannot hold a spill")
def test_the_visit_frame_and_its_sorted_columns_are_in_the_spill(tmp_path):
    from fomolab.analysis import PART_COLUMNS, _by_time, _part_frame, _visit_frame
    from fomolab.stats import _folder
    from fomolab.stats._example import example_results

    res = example_results()
    runs = _folder.nonempty_runs(res)
    end_s = {str(r): float(d) for r, d in zip(runs.run_id, runs.duration_s, strict=True)}
    cols = ["run_id", "arm", "replicate", "point", "shopper_id", "segment", "impulsiveness", "arrival_s",
            "departure_s", "first_purchase_s"]
    s = Spill(tmp_path)
    sh = _visit_frame(res.viewers(cols, narrow=("replicate", "point", "shopper_id"), spill=s), end_s, s.empty)
    want = _visit_frame(res.viewers(cols, narrow=("replicate", "point", "shopper_id")), end_s)
    pd.testing.assert_frame_equal(sh, want, check_exact=True)

    def codes(col: pd.Series) -> np.ndarray:
        return col.cat.codes.to_numpy() if isinstance(col.dtype, pd.CategoricalDtype) else col.to_numpy()

    assert all(mapped(codes(sh[c])) for c in sh.columns), [c for c in sh.columns if not mapped(codes(sh[c]))]
    coded = _by_time(_part_frame(sh), alloc=s.empty)
    pd.testing.assert_frame_equal(coded, _by_time(_part_frame(want)), check_exact=True)
    # every column but the arm (each arm's code written out over its stretch of rows, a byte a row)
    assert [c for c in PART_COLUMNS if not mapped(codes(coded[c]))] == ["arm"]


@pytest.mark.skipif(not usable(), reason="the temporary directory cannot hold a spill")
def test_an_analysis_with_its_visits_spilled_gives_the_same_tables(spied):
    from fomolab.stats._example import example_results

    res = example_results()
    memory, spilled = analyses(res, n_boot=50)
    same_tables(memory, spilled)
    # the visits' columns were in the spill: the ten read, the three added, the point tables' columns sorted
    n = int(res.runs.viewers.sum())
    assert len(spied) == 1 and spied[0].nbytes > 40 * n and spied[0].paged


@pytest.mark.skipif(not usable(), reason="the temporary directory cannot hold a spill")
def test_a_sweeps_analysis_with_its_visits_spilled_gives_the_same_tables(tmp_path):
    from pathlib import Path

    from fomolab import Results, run

    spec = Path(__file__).parent / "golden" / "specs" / "sweep.toml"  # a grid of four points, two arms
    folder = tmp_path / "out"
    run(spec, out=folder, replicates=3)
    memory, spilled = analyses(Results(folder), n_boot=20)
    assert memory["points"] is not None and len(memory["points"]) > 1
    same_tables(memory, spilled)


def test_analyze_spills_large_folders_by_default_where_it_can(spied, monkeypatch):
    from fomolab import analysis
    from fomolab.stats._example import example_results

    res = example_results()
    n = int(res.runs.viewers.sum())
    monkeypatch.setattr(analysis, "SPILL_VISITS", n + 1)
    analysis.analyze(res, side_process=False, n_boot=0)
    assert spied == []  # below the threshold: in memory
    monkeypatch.setattr(analysis, "SPILL_VISITS", n)
    analysis.analyze(res, side_process=False, n_boot=0)
    made = len(spied)
    assert made == (1 if usable() else 0)
    monkeypatch.setattr(_spill, "in_memory", lambda d: True)  # a tmpfs /tmp: in memory, without being asked
    analysis.analyze(res, side_process=False, n_boot=0)
    assert len(spied) == made


def test_a_spill_where_it_cannot_keep_anything_out_of_memory_is_refused(monkeypatch):
    from fomolab.analysis import analyze
    from fomolab.errors import DataError
    from fomolab.stats._example import example_results

    monkeypatch.setattr(_spill, "in_memory", lambda d: True)
    with pytest.raises(DataError, match=r"spill=True: .*tmpfs"):
        analyze(example_results(), spill=True)


@pytest.mark.skipif(not usable(), reason="the temporary directory cannot hold a spill")
def test_the_spills_directory_is_the_one_given(tmp_path, spied):
    from fomolab.analysis import analyze
    from fomolab.stats._example import example_results

    analyze(example_results(), side_process=False, n_boot=0, spill=str(tmp_path))
    assert [s.directory for s in spied] == [str(tmp_path)] and spied[0].nbytes > 0


def test_the_memory_estimate_leaves_out_the_visits_a_spill_holds(monkeypatch):
    from fomolab import analysis
    from fomolab.stats._example import example_results

    res = example_results()
    visits, held = analysis.peak_memory_estimate(res, spill=False)
    _, spilled = analysis.peak_memory_estimate(res, spill=True)
    assert held - spilled == analysis.PEAK_BYTES_PER_VISIT * visits
    monkeypatch.setattr(analysis, "SPILL_VISITS", visits)
    assert analysis.peak_memory_estimate(res)[1] == (spilled if usable() else held)

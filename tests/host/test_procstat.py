"""The server memory that ``ovpnkx load`` samples (``ovpnkx_host.procstat``): what the
process allocated itself, not its share of files that other processes map too."""

import mmap
import os

import pytest

from ovpnkx_host.procstat import memory_kb

MIB = 1 << 20


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps_rollup"), reason="no /proc/<pid>/smaps_rollup here")
def test_memory_counts_what_the_process_allocates_not_the_files_it_maps(tmp_path):
    me = os.getpid()
    base = memory_kb(me)
    heap = b"x" * (32 * MIB)  # written: its pages are the process's own
    grown = memory_kb(me)
    assert 30 * 1024 < grown - base < 40 * 1024, (base, grown)
    path = tmp_path / "data"
    path.write_bytes(os.urandom(MIB) * 16)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        touched = sum(m[i] for i in range(0, len(m), 4096))  # every page in: file-backed, shared
        mapped = memory_kb(me)
    assert touched >= 0 and abs(mapped - grown) < 4 * 1024, (grown, mapped)
    del heap
    assert memory_kb(os.getpid() + 10 ** 7) == 0  # no such process

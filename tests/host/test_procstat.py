"""The server memory that ``ovpnkx load`` samples (``ovpnkx_host.procstat``): what the
process allocated itself, not its share of files that other processes map too."""

import mmap
import os

import pytest

from ovpnkx_host.procstat import memory_kb

MIB = 1 << 20


def _touch(m: mmap.mmap, write: bool) -> int:
    """Every page of ``m`` brought in (written, or read): no other allocation on the way."""
    total = 0
    for i in range(0, len(m), 4096):
        if write:
            m[i] = 1
        total += m[i]
    return total


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps_rollup"), reason="no /proc/<pid>/smaps_rollup here")
def test_memory_counts_what_the_process_allocates_not_the_files_it_maps(tmp_path):
    # mappings of their own rather than Python objects: pages the allocator kept from earlier
    # tests in this process (a pytest worker) would make neither figure move
    me = os.getpid()
    path = tmp_path / "data"
    chunk = os.urandom(MIB)
    with open(path, "wb") as f:
        for _ in range(16):
            f.write(chunk)
    base = memory_kb(me)
    with mmap.mmap(-1, 32 * MIB) as heap:  # anonymous, written: the process's own pages
        assert _touch(heap, True) == 32 * MIB // 4096
        grown = memory_kb(me)
    assert 30 * 1024 < grown - base < 40 * 1024, (base, grown)
    base = memory_kb(me)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        _touch(m, False)  # every page in: file-backed, shareable
        mapped = memory_kb(me)
    assert abs(mapped - base) < 4 * 1024, (base, mapped)
    assert memory_kb(os.getpid() + 10 ** 7) == 0  # no such process

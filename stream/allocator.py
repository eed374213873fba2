"""The C allocator of a long-running worker: large blocks straight from the OS and back.

glibc's malloc gives blocks of 128 KiB and more their own mapping, returned to the OS
when freed, but raises that threshold to the size of each such block freed (up to 32
MiB): once a worker has freed its first fetch responses and checkpoint pickles, blocks
that size come from the heap, and the heap keeps what is freed in its middle. After a
worker applied 300,000 events, 56 MiB of its heap was free and still resident
(``mallinfo2``). With the threshold fixed (what ``MALLOC_MMAP_THRESHOLD_`` does, set from
here so that every way of starting the worker has it): 7.6 MiB, and 3,018 -> 2,825 bytes
of resident memory a customer in ``bench.state`` (docs/benchmarks.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import platform

log = logging.getLogger(__name__)

#: glibc's mallopt parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: glibc's default threshold, kept fixed.
MMAP_THRESHOLD_BYTES = 128 * 1024


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap and trim thresholds at ``threshold``; ``False`` where the C
    library is not glibc, or the environment sets the thresholds itself (an operator's
    ``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_`` win)."""
    if platform.libc_ver()[0] != "glibc":
        return False
    if {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"} & os.environ.keys():
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    fixed = all(libc.mallopt(p, threshold) == 1 for p in (M_MMAP_THRESHOLD, M_TRIM_THRESHOLD))
    if not fixed:
        log.warning("glibc refused an mmap threshold of %d bytes", threshold)
    return fixed

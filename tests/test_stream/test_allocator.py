"""The worker's allocator setting, in a fresh interpreter each (it changes the process)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")

#: Frees a 4-MiB block, then counts the blocks mapped for a 1-MiB one (mallinfo2.hblks).
PROBE = """
import ctypes, ctypes.util, sys
from stream.allocator import fix_mmap_threshold
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in "arena ordblks smblks hblks hblkhd usmblks"
                " fsmblks uordblks fordblks keepcost".split()]
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.mallinfo2.restype = MallInfo2
fixed = fix_mmap_threshold() if sys.argv[1] == "fix" else None
large = bytearray(4 << 20)
del large  # mapped and unmapped: glibc's own threshold rises to its size
before = libc.mallinfo2().hblks
block = bytearray(1 << 20)
print(fixed, libc.mallinfo2().hblks - before)
"""


def probe(mode: str, **env: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        env={k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")} | env,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def test_large_blocks_stay_mapped_after_a_larger_one_was_freed() -> None:
    assert probe("leave") == "None 0"  # glibc's own threshold: from the heap
    assert probe("fix") == "True 1"


def test_the_operators_malloc_settings_win() -> None:
    assert probe("fix", MALLOC_MMAP_THRESHOLD_=str(2 << 20)) == "False 0"

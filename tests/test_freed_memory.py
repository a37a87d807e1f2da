"""Training keeps freed memory mapped: a step's activations are not page-faulted in afresh every step."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

# Each "step" allocates, fills and frees activations of 4-80 MiB (a 60-way 5-shot ProtoNets episode's
# first block is 120 MiB), as a training step does; prints the minor page faults of the last step.
BLOCKS_MIB = (12, 40, 12, 80, 4)
PROBE = f"""
import resource, sys, torch
from mann.training.device import keep_freed_memory
if sys.argv[1] == "kept":
    assert keep_freed_memory()
def step():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    blocks = [torch.empty(mib << 18).fill_(1.0) for mib in {BLOCKS_MIB}]  # float32: 2**18 per MiB
    del blocks
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print([step() for _ in range(6)][-1])
"""
PAGES = (sum(BLOCKS_MIB) << 20) // 4096


def last_step_faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


@pytest.mark.skipif(platform.system() != "Linux" or not platform.libc_ver()[0].startswith("glibc"),
                    reason="keep_freed_memory tunes glibc's malloc; this platform has another C library")
def test_a_steps_activations_are_not_faulted_in_afresh_once_the_heap_has_grown():
    assert last_step_faults("default") > PAGES // 2  # glibc maps and unmaps these blocks every step
    assert last_step_faults("kept") < PAGES // 20

"""Benchmarks (``mann bench``): every figure beside its baseline, measured in the same run.

benchmarks.py       sampler episodes/s, the model step, the ProtoNets step, the MAML meta-update
                    (learn2learn's loop vs the vectorized one), ``mann train`` end to end, peak memory
grading.py          a generated class graded serial and on several sandboxes at once
starter_sampler.py  the baseline they beat: a per-episode PNG-reading generator in the style of
                    the assignment's starter code (not part of ``episodes``: nothing trains on it)

Names load their module on first use.
"""

from episodes.lazy import lazy_exports

__all__ = ["QUICK", "BenchPlan", "format_tables", "machine", "run_benchmarks", "write_tables"]
__getattr__, __dir__ = lazy_exports(__name__, {
    name: "benchmarks" for name in ("QUICK", "BenchPlan", "format_tables", "machine", "run_benchmarks", "write_tables")
})

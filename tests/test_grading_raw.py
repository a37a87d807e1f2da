"""Crafted raw outputs: whatever a submission leaves where the probe writes
info.json and result.npz, the grader reads it with bounded size, depth and
array headers, gives that test zero with the reason, and grades the next
submission normally."""

from __future__ import annotations

import io
import json
import tracemalloc
import zipfile

import numpy as np
import pytest

from grading_variants import make_variant, rubric_for_tests
from mann.grading import raw
from mann.grading.grade import Grader
from mann.grading.submission import find_submissions


def npy(descr: str, shape: tuple, data: bytes = b"", pad: int = 0) -> bytes:
    """An .npy stream: a version-1.0 header (optionally padded past numpy's
    10,000-byte limit) followed by ``data``."""
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}) + " " * pad + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + data


def npz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in members.items():
            z.writestr(name + ".npy", data)
    return buffer.getvalue()


def good_npz() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, output=np.zeros((4, 3, 3, 3), dtype=np.float32))
    return buffer.getvalue()


# name: (what replaces info.json (a Python expression of its text) or None,
#        what replaces result.npz (bytes) or None, words of the reason)
CRAFTED = {
    "error_not_an_object": (repr('{"error": "x"}'), None, "'error' is a JSON string, not an object"),
    "nested_100000_deep": ("'[' * 100_000", None, "nests deeper than Python can parse"),
    "nested_too_deep": (repr('{"output": ' + "[" * 50 + "]" * 50 + "}"), None, "nests more than 12 levels deep"),
    "not_an_object": (repr("[1, 2, 3]"), None, "holds a JSON array, not an object"),
    "truncated_json": (repr('{"op": "forward", "output": {"type": "torch.Te'), None, "is not valid JSON"),
    "wrong_json_type": (repr('{"op": "forward", "output": [1]}'), None, "'output' is a JSON array, not an object"),
    "extra_large_json": ("'{\"pad\": \"' + 'x' * 1_100_000 + '\"}'", None, "larger than the 1048576 bytes allowed"),
    "header_claims_10e14": (None, npz({"output": npy("<f8", (10**14,))}), "declares shape [100000000000000]"),
    "huge_header": (None, npz({"output": npy("<f4", (1,), b"\0" * 4, pad=20_000)}), "not a readable .npy array header"),
    "object_dtype": (None, npz({"output": npy("|O", (1,), b"\0" * 8)}), "dtype object are not accepted"),
    "complex_dtype": (None, npz({"output": npy("<c8", (1,), b"\0" * 8)}), "dtype complex64 are not accepted"),
    "truncated_array": (None, npz({"output": npy("<f4", (4, 3, 3, 3), b"\0" * 40)}), "truncated: 40 of the 432 bytes"),
    "truncated_npz": (None, good_npz()[:200], "is not a readable .npz archive"),
    "not_an_array_member": (None, npz({"output": b"\0" * 8}) .replace(b"output.npy", b"output.txt"),
                            "is not an .npy array"),
}


def crafting_prefix(info: str | None, result: bytes | None) -> str:
    """Code at the top of mann.py that makes the probe's own json.dump / np.savez
    (same process) write the crafted contents instead, as a hostile submission could."""
    lines = ["import json as _json, numpy as _np"]
    if info is not None:
        lines += [f"_INFO = {info}", "_json.dump = lambda obj, f, **kw: f.write(_INFO)"]
    if result is not None:
        lines += [f"_RESULT = {result!r}",
                  "def _savez(path, *args, **kwargs):",
                  "    with open(path, 'wb') as f:",
                  "        f.write(_RESULT)",
                  "_np.savez = _savez"]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def grader(grading_reference):
    rubric = rubric_for_tests(["mann_output"], {"wall_s": 30, "cpu_s": 20, "file_mb": 4})
    with Grader(grading_reference, rubric) as g:
        yield g


@pytest.mark.parametrize("form", list(CRAFTED))
def test_a_crafted_raw_output_is_that_tests_zero_with_the_reason(grader, tmp_path, form):
    info, result, words = CRAFTED[form]
    make_variant(tmp_path / "a_crafted", {}, {"mann.py": crafting_prefix(info, result)})
    make_variant(tmp_path / "b_correct", {})
    graded = {s.name: grader.grade(s) for s in find_submissions([tmp_path])}
    crafted = graded["a_crafted"]
    assert not crafted.problem, crafted.problem  # not an internal error: the test's own zero
    (test,) = crafted.tests
    assert not test.passed and words in test.message, test.message
    assert graded["b_correct"].score == graded["b_correct"].max_score, graded["b_correct"].tests[0].message


def test_a_fifo_or_a_link_in_place_of_a_raw_output_is_refused_without_blocking(tmp_path):
    import os

    os.mkfifo(tmp_path / "info.json")
    with pytest.raises(raw.RawOutputError, match="not a regular file"):
        raw.read_json(tmp_path / "info.json", 1 << 20)  # an open() without O_NONBLOCK would wait forever
    (tmp_path / "result.npz").symlink_to(tmp_path / "elsewhere.npz")
    with pytest.raises(raw.RawOutputError, match="symbolic link"):
        raw.read_npz(tmp_path / "result.npz", 1 << 20)
    (tmp_path / "secret.json").write_text("{}")
    os.link(tmp_path / "secret.json", tmp_path / "linked.json")
    with pytest.raises(raw.RawOutputError, match="2 hard links"):
        raw.read_json(tmp_path / "linked.json", 1 << 20)


def test_a_huge_header_allocates_nothing(tmp_path):
    path = tmp_path / "result.npz"
    path.write_bytes(npz({"output": npy("<f8", (10**7,))}))  # claims 80 MB, holds none of it
    tracemalloc.start()
    with pytest.raises(raw.RawOutputError, match="more than the 67108864 bytes allowed"):
        raw.read_npz(path, 64 << 20)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1 << 20, peak


def test_arrays_the_probe_writes_read_back_exactly(tmp_path):
    arrays = {"a": np.arange(12, dtype=np.int32).reshape(3, 4), "f": np.asfortranarray(np.ones((2, 3))),
              "s": np.array(["alpha/character01", "b"]), "b": np.array([True, False]), "e": np.zeros((0, 5))}
    np.savez(tmp_path / "result.npz", **arrays)
    back = raw.read_npz(tmp_path / "result.npz", 1 << 20)
    assert set(back) == set(arrays)
    for key, value in arrays.items():
        assert back[key].dtype == value.dtype and np.array_equal(back[key], value)
    back["a"][0, 0] = 7  # writable, like np.load's
    assert raw.read_npz(tmp_path / "none.npz", 10) == {} and raw.read_json(tmp_path / "none.json", 10) is None
    (tmp_path / "info.json").write_text(json.dumps({"output": {"type": "torch.Tensor", "shape": [1, 2]}}))
    assert raw.read_json(tmp_path / "info.json", 1 << 10) == {"output": {"type": "torch.Tensor", "shape": [1, 2]}}


def test_a_handed_in_results_file_with_a_huge_header_is_unreadable_not_allocated(grading_reference, tmp_path):
    from mann.grading.checks_files import results_judge

    (tmp_path / "mann_results_1_2.npy").write_bytes(npy("<f8", (10**14,)) + npy("<f8", (1,), b"\0" * 8))
    verdict = results_judge(grading_reference, {"runs": [[1, 2, 0.9]]}, tmp_path)
    assert not verdict.passed
    assert "mann_results_1_2.npy: unreadable" in verdict.message and "declares shape [100000000000000]" in verdict.message


HUGE_WEIGHT = {"mann.py": {"init": "self.layer1.weight_hh_l0 = nn.Parameter(torch.zeros(16, 10000))\n"
                                   "for layer in (self.layer1, self.layer2):"}}


def test_a_huge_returned_weight_is_refused_by_shape_before_any_computation(grader, tmp_path):
    """mann_init squares weight_hh (W^T W): on a [16, 10000] one that was a
    [10000, 10000] float64 matrix, three times over (2.6 GB in the grader)."""
    rubric = rubric_for_tests(["mann_init"], {"wall_s": 30, "cpu_s": 20, "file_mb": 4})
    make_variant(tmp_path / "a_huge", HUGE_WEIGHT)
    make_variant(tmp_path / "b_correct", {})
    subs = {s.name: s for s in find_submissions([tmp_path])}
    tracemalloc.start()
    huge = grader.grade(subs["a_huge"], rubric)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    (test,) = huge.tests
    assert not test.passed, test.message
    assert "layer1.weight_hh_l0 has shape [16, 10000]; expected [4·hidden, hidden] = [128, 32]" in test.message
    assert peak < 64 << 20, f"the grader allocated {peak >> 20} MB judging it"
    correct = grader.grade(subs["b_correct"], rubric)
    assert correct.score == correct.max_score, correct.tests[0].message

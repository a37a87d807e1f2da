"""Tests of the student's ``DataGenerator`` (load_data.py).

Each test samples episodes in the sandbox with ``DataGenerator(N, K+1,
split, config={"data_folder": <tree>})._sample()`` and judges the raw arrays
here: every returned image is identified as (character, drawer) of the PNG
tree (see image_index.py), so class order, permutations, drawers and splits
can be checked exactly.
"""

from __future__ import annotations

import numpy as np

from episodes.splits import PARTS as SPLITS
from mann.grading.check import Check, Verdict, fail, ok
from mann.grading.image_index import UNKNOWN
from mann.grading.reference import Reference
from mann.grading.runner import Probe, RunResult
from episodes.layout import IMAGE_DIM


def sample_probe(configs: list[tuple[int, int, str]], episodes: int, seed: int) -> Probe:
    job = {"configs": [{"ways": n, "shots": k, "split": s, "episodes": episodes} for n, k, s in configs],
           "seed": seed}
    return Probe("episodes", job, {})


def episodes_of(result: RunResult, i: int) -> tuple[np.ndarray, np.ndarray] | Verdict:
    """(images float64 [E, K+1, N, 784], labels float64 [E, K+1, N, N]) of config i,
    or a failing Verdict saying why they cannot be judged."""
    record = result.info["configs"][i]
    n, k, split = record["ways"], record["shots"], record["split"]
    call = f"DataGenerator({n}, {k + 1}, {split!r})"
    if "error" in record:
        error = record["error"]
        lines = [x for x in str(error.get("traceback", "")).strip().splitlines() if x.strip()]
        return fail(f"{call}: {error.get('stage')} failed: {lines[-1].strip() if lines else ''}"
                    f"\n{error.get('traceback', '')}")
    images, labels = result.arrays.get(f"images_{i}"), result.arrays.get(f"labels_{i}")
    if images is None or labels is None:
        return fail(f"{call}._sample() returned values that are not numeric arrays")
    want_i, want_l = (k + 1, n, IMAGE_DIM), (k + 1, n, n)
    if images.shape[1:] != want_i or labels.shape[1:] != want_l:
        return fail(f"{call}._sample() returned images {list(images.shape[1:])} and labels "
                    f"{list(labels.shape[1:])}; expected [K+1, N, 784] = {list(want_i)} and "
                    f"[K+1, N, N] = {list(want_l)}")
    if not (np.issubdtype(images.dtype, np.number) and np.issubdtype(labels.dtype, np.number)):
        return fail(f"{call}._sample() returned arrays of {images.dtype} / {labels.dtype}, not numbers")
    return images.astype(np.float64), labels.astype(np.float64)


def identified_episodes(
    ref: Reference, result: RunResult, i: int, where: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | Verdict:
    """(images, labels, chars int64 [E, K+1, N], drawers int64 [E, K+1, N]) of config i,
    or a failing Verdict when they cannot be judged or an image is not one of the tree's."""
    got = episodes_of(result, i)
    if isinstance(got, Verdict):
        return got
    chars, drawers = ref.index.identify(got[0])
    bad = unidentified(chars, where)
    return bad if bad is not None else (*got, chars, drawers)


def unidentified(chars: np.ndarray, where: str) -> Verdict | None:
    bad = np.argwhere(chars < 0)
    if len(bad) == 0:
        return None
    e = bad[0]
    kind = "not an image of the data folder" if chars[tuple(e)] == UNKNOWN else "ambiguous"
    return fail(f"{where}: image at episode {e[0]}, row {e[1]}, column {e[2]} is {kind}; images must be "
                f"read from config['data_folder'] and returned as 1 - img / img.max(), flattened to 784")


def class_characters(chars: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """int64 [E, N]: the character of each class, from support row 0 and its labels."""
    episodes, _, ways = chars.shape
    out = np.full((episodes, ways), -1, dtype=np.int64)
    cls = labels[:, 0].argmax(-1)
    for e in range(episodes):
        out[e, cls[e]] = chars[e, 0]
    return out


def is_one_hot(labels: np.ndarray) -> np.ndarray:
    """bool [...]: each last-axis vector is exactly one 1 and zeros."""
    return (np.isclose(labels, 0) | np.isclose(labels, 1)).all(-1) & np.isclose(labels.sum(-1), 1)


# --- data_shapes ------------------------------------------------------------

def shapes_probe(ref: Reference, p: dict) -> Probe:
    return sample_probe([(n, k, "train") for n, k in p["configs"]], p["episodes"], p["seed"])


def shapes_judge(ref: Reference, p: dict, result: RunResult, probe: Probe) -> Verdict:
    for i, record in enumerate(result.info["configs"]):
        got = episodes_of(result, i)
        if isinstance(got, Verdict):
            return got
        n, k = record["ways"], record["shots"]
        call = f"DataGenerator({n}, {k + 1}, 'train')._sample()"
        for part in ("images", "labels"):
            d = record.get(part, {})
            if d.get("type") != "numpy.ndarray" or d.get("dtype") != "float32":
                return fail(f"{call} returned {part} as {d.get('type')} of {d.get('dtype', '?')}; "
                            f"expected a numpy.ndarray of float32")
        images, labels = got
        if not np.isfinite(images).all() or images.min() < 0 or images.max() > 1:
            return fail(f"{call}: image values span [{images.min():.3g}, {images.max():.3g}]; expected [0, 1]")
        if images.mean() > 0.5:
            return fail(f"{call}: mean pixel {images.mean():.2f} > 0.5, so ink is 0 and background 1; "
                        f"invert the images (1 - img / img.max()) so ink is 1")
        if not is_one_hot(labels).all():
            return fail(f"{call}: labels are not one-hot vectors of length N = {n}")
    return ok("images [K+1, N, 784] and labels [K+1, N, N], numpy float32, for "
              + ", ".join(f"N={r['ways']} K={r['shots']}" for r in result.info["configs"]))


# --- support_rows -----------------------------------------------------------

def one_config_probe(split: str = "train"):
    def build(ref: Reference, p: dict) -> Probe:
        return sample_probe([(p["ways"], p["shots"], split)], p["episodes"], p["seed"])
    return build


def support_judge(ref: Reference, p: dict, result: RunResult, probe: Probe) -> Verdict:
    got = episodes_of(result, 0)
    if isinstance(got, Verdict):
        return got
    images, labels = got
    n, k = p["ways"], p["shots"]
    eye = np.eye(n)
    for e in range(len(labels)):
        for row in range(k):
            if not np.allclose(labels[e, row], eye):
                return fail(f"episode {e}, support row {row}: labels are {labels[e, row].argmax(-1).tolist()} "
                            f"(as class indices), not 0..{n - 1} in order; rows 0..K-1 must hold "
                            f"classes 0..N-1 in order with identity labels (only the query row is shuffled)")
    chars, _ = ref.index.identify(images)
    bad = unidentified(chars[:, :k], "support rows")
    if bad:
        return bad
    for e in range(len(chars)):
        support = chars[e, :k]
        for c in range(n):
            if len(set(support[:, c])) != 1:
                return fail(f"episode {e}: class {c}'s support images show different characters "
                            f"({', '.join(ref.index.name(x) for x in support[:, c])}); each class is one character")
        if len(set(support[0])) != n:
            return fail(f"episode {e}: two classes show the same character; draw N distinct characters")
    return ok(f"{len(chars)} episodes (N={n}, K={k}): support rows in class order, one character per class")


# --- query_shuffled ---------------------------------------------------------

def query_shuffled_judge(ref: Reference, p: dict, result: RunResult, probe: Probe) -> Verdict:
    got = episodes_of(result, 0)
    if isinstance(got, Verdict):
        return got
    images, labels = got
    n, k = p["ways"], p["shots"]
    query = labels[:, k]
    if not is_one_hot(query).all():
        return fail("query row labels are not one-hot vectors")
    perms = query.argmax(-1)
    for e, perm in enumerate(perms):
        if sorted(perm.tolist()) != list(range(n)):
            return fail(f"episode {e}: query labels {perm.tolist()} are not a permutation of 0..{n - 1}; "
                        f"the query row holds one image of each class")
    chars, _ = ref.index.identify(images)
    bad = unidentified(chars, "episode images")
    if bad:
        return bad
    owners = class_characters(chars, labels)
    for e in range(len(chars)):
        for j in range(n):
            if chars[e, k, j] != owners[e, perms[e, j]]:
                return fail(f"episode {e}, query position {j}: the image shows {ref.index.name(chars[e, k, j])} "
                            f"but its label says class {perms[e, j]} ({ref.index.name(owners[e, perms[e, j]])}); "
                            f"shuffle the query images and their labels with the same permutation")
    distinct = {tuple(perm) for perm in perms.tolist()}
    if len(distinct) == 1:
        return fail(f"the query row has the same order {perms[0].tolist()} in all {len(perms)} episodes; "
                    f"draw a new random permutation for every episode")
    return ok(f"{len(perms)} episodes: query images and labels permuted together, {len(distinct)} distinct orders")


# --- query_characters -------------------------------------------------------

def query_characters_judge(ref: Reference, p: dict, result: RunResult, probe: Probe) -> Verdict:
    got = identified_episodes(ref, result, 0, "episode images")
    if isinstance(got, Verdict):
        return got
    chars, k = got[2], p["shots"]
    for e in range(len(chars)):
        support, query = sorted(chars[e, 0].tolist()), sorted(chars[e, k].tolist())
        if support != query:
            extra = [ref.index.name(c) for c in set(query) - set(support)]
            detail = f" (e.g. {extra[0]}, not in the support rows)" if extra else " (a character repeated)"
            return fail(f"episode {e}: the query row shows other characters than the support rows{detail}; "
                        f"the query row must hold one new image of each of the N support characters")
    return ok(f"{len(chars)} episodes: the query row shows exactly the support characters")


# --- distinct_drawers -------------------------------------------------------

def drawers_judge(ref: Reference, p: dict, result: RunResult, probe: Probe) -> Verdict:
    got = identified_episodes(ref, result, 0, "episode images")
    if isinstance(got, Verdict):
        return got
    _, _, chars, drawers = got
    for e in range(len(chars)):
        pairs = list(zip(chars[e].ravel().tolist(), drawers[e].ravel().tolist()))
        seen = set()
        for pair in pairs:
            if pair[1] < 0:  # an image with a pixel-identical twin: its drawer cannot be told
                continue
            if pair in seen:
                return fail(f"episode {e}: the same image ({ref.index.name(pair[0])}, drawer {pair[1] + 1}) "
                            f"appears twice; draw the K+1 images of a character from K+1 distinct drawers "
                            f"(sample without replacement)")
            seen.add(pair)
    return ok(f"{len(chars)} episodes (K={p['shots']}): every character's K+1 images come from distinct drawers")


# --- split_disjoint ---------------------------------------------------------

def split_probe(ref: Reference, p: dict) -> Probe:
    return sample_probe([(p["ways"], p["shots"], s) for s in SPLITS], p["episodes"], p["seed"])


def split_judge(ref: Reference, p: dict, result: RunResult, probe: Probe) -> Verdict:
    seen: dict[str, set[int]] = {}
    for i, split in enumerate(SPLITS):
        got = identified_episodes(ref, result, i, f"the {split} generator")
        if isinstance(got, Verdict):
            return got
        seen[split] = set(got[2].ravel().tolist())
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        both = seen[a] & seen[b]
        if both:
            example = ref.index.name(min(both))
            return fail(f"{len(both)} characters came from both the {a} and the {b} generator "
                        f"(e.g. {example}); each character must belong to exactly one split")
    sizes = ref.split_sizes
    for split in SPLITS:
        if len(seen[split]) > sizes[split]:
            return fail(f"the {split} generator returned {len(seen[split])} distinct characters, more than the "
                        f"{sizes[split]} of its split (1100 train / 100 val / the rest test)")
    counts = ", ".join(f"{s} {len(seen[s])}" for s in SPLITS)
    return ok(f"distinct characters seen: {counts}; no character in two splits")


CHECKS = [
    Check("data_shapes", {"configs": [[2, 1], [3, 2], [5, 1]], "episodes": 3}, shapes_probe, shapes_judge),
    Check("support_rows", {"ways": 4, "shots": 2, "episodes": 20}, one_config_probe(), support_judge),
    Check("query_shuffled", {"ways": 3, "shots": 1, "episodes": 40}, one_config_probe(), query_shuffled_judge),
    Check("query_characters", {"ways": 4, "shots": 1, "episodes": 20}, one_config_probe(), query_characters_judge),
    Check("distinct_drawers", {"ways": 4, "shots": 3, "episodes": 30}, one_config_probe(), drawers_judge),
    Check("split_disjoint", {"ways": 5, "shots": 1, "episodes": 40}, split_probe, split_judge),
]

"""Tests of the student's ``DataGenerator`` (load_data.py).

Each test samples episodes in the sandbox with ``DataGenerator(N, K+1,
split, config={"data_folder": <tree>})._sample()`` and judges the raw arrays
here: every returned image is identified as (character, drawer) of the PNG
tree (see image_index.py), so class order, permutations, drawers and splits
can be checked exactly. A judge lists every problem it finds (check.Problems).
"""

from __future__ import annotations

import numpy as np

from episodes.splits import CS330_SIZES
from mann.grading import coverage
from mann.grading.check import REAL_KINDS, Check, Problems, Verdict, fail
from mann.grading.image_index import UNKNOWN
from mann.grading.reference import Reference
from mann.grading.runner import Probe, RunResult
from episodes.layout import IMAGE_DIM

SPLITS = ("train", "val", "test")  # the splits the assignment's DataGenerator accepts


def sample_probe(configs: list[tuple[int, int, str]], episodes: int, seed: int, folder_lists: bool = False) -> Probe:
    """Sample ``episodes`` episodes of each (N, K, split); with folder_lists, also
    report the generators' attributes that list character folders."""
    job = {"configs": [{"ways": n, "shots": k, "split": s, "episodes": episodes} for n, k, s in configs],
           "seed": seed, "folder_lists": folder_lists}
    return Probe("episodes", job, {})


def episodes_of(result: RunResult, i: int) -> tuple[np.ndarray, np.ndarray] | Verdict:
    """(images float64 [E, K+1, N, 784], labels float64 [E, K+1, N, N]) of config i,
    or a failing Verdict saying why they cannot be judged."""
    record = result.info["configs"][i]
    n, k, split = record["ways"], record["shots"], record["split"]
    call = f"DataGenerator({n}, {k + 1}, {split!r})"
    if "error" in record:  # its traceback is in the test's details
        return fail(f"{call}: {record['error']['message']}")
    images, labels = result.arrays.get(f"images_{i}"), result.arrays.get(f"labels_{i}")
    if images is None or labels is None:
        return fail(f"{call}._sample() returned values that are not numeric arrays")
    want_i, want_l = (k + 1, n, IMAGE_DIM), (k + 1, n, n)
    if images.shape[1:] != want_i or labels.shape[1:] != want_l or images.ndim != 4 or labels.ndim != 4:
        return fail(f"{call}._sample() returned images {list(images.shape[1:])} and labels "
                    f"{list(labels.shape[1:])}; expected [K+1, N, 784] = {list(want_i)} and "
                    f"[K+1, N, N] = {list(want_l)}")
    if images.shape[0] != record["episodes"] or labels.shape[0] != record["episodes"]:
        # the probe stacks exactly the episodes asked for; more would only cost the grader
        return fail(f"{call}: {images.shape[0]} episodes of images and {labels.shape[0]} of labels came back "
                    f"for the {record['episodes']} sampled")
    if images.dtype.kind not in REAL_KINDS or labels.dtype.kind not in REAL_KINDS:
        return fail(f"{call}._sample() returned arrays of {images.dtype} / {labels.dtype}, not real numbers")
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
    return fail(bad) if bad else (*got, chars, drawers)


def unidentified(chars: np.ndarray, where: str) -> str:
    """Why some images of chars int64 [E, ...] were not identified ("" when all were)."""
    bad = np.argwhere(chars < 0)
    if len(bad) == 0:
        return ""
    e = bad[0]
    kind = "not an image of the data folder" if chars[tuple(e)] == UNKNOWN else "ambiguous"
    episodes = len(np.unique(bad[:, 0]))
    return (f"{where}: image at episode {e[0]}, row {e[1]}, column {e[2]} is {kind} (such images in {episodes} "
            f"of {len(chars)} episodes); images must be read from config['data_folder'] and returned as "
            f"1 - img / img.max(), flattened to 784")


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
    records = result.info["configs"]
    problems = Problems(out_of=len(records), unit="configurations")
    for i, record in enumerate(records):
        n, k = record["ways"], record["shots"]
        call = f"DataGenerator({n}, {k + 1}, 'train')._sample()"
        if "error" not in record:
            for part in ("images", "labels"):
                d = record.get(part, {})
                if d.get("type") != "numpy.ndarray" or d.get("dtype") != "float32":
                    problems.add(f"{part} type", f"{call} returned {part} as {d.get('type')} of "
                                 f"{d.get('dtype', '?')}; expected a numpy.ndarray of float32")
        got = episodes_of(result, i)
        if isinstance(got, Verdict):
            problems.add(f"unusable {i}", got.message)
            continue
        images, labels = got
        if not np.isfinite(images).all() or images.min() < 0 or images.max() > 1:
            problems.add("range", f"{call}: image values span [{images.min():.3g}, {images.max():.3g}]; "
                         f"expected [0, 1]")
        elif images.mean() > 0.5:
            problems.add("ink", f"{call}: mean pixel {images.mean():.2f} > 0.5, so ink is 0 and background 1; "
                         f"invert the images (1 - img / img.max()) so ink is 1")
        if not is_one_hot(labels).all():
            problems.add("one-hot", f"{call}: labels are not one-hot vectors of length N = {n}")
    return problems.verdict("images [K+1, N, 784] and labels [K+1, N, N], numpy float32, for "
                            + ", ".join(f"N={r['ways']} K={r['shots']}" for r in records))


def shapes_params(p: dict) -> str:
    """Why these configurations cannot tell [K+1, N] from [N, K+1] ("" when they can)."""
    same = [[n, k] for n, k in p["configs"] if k + 1 == n]
    if same:
        n, k = same[0]
        return (f"configs {[n, k]}: K+1 = N = {n}, so images laid out [N, K+1, 784] would have the expected "
                f"shape; choose pairs [N, K] with K+1 != N")
    return ""


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
    problems = Problems(out_of=len(labels))
    eye = np.eye(n)
    for e in range(len(labels)):
        rows = [row for row in range(k) if not np.allclose(labels[e, row], eye)]
        if rows:
            problems.add("labels", f"episode {e}, support row {rows[0]}: labels are "
                         f"{labels[e, rows[0]].argmax(-1).tolist()} (as class indices), not 0..{n - 1} in order; "
                         f"rows 0..K-1 must hold classes 0..N-1 in order with identity labels (only the query "
                         f"row is shuffled)")
    chars, _ = ref.index.identify(images)
    bad = unidentified(chars[:, :k], "support rows")
    if bad:
        problems.add("unidentified", bad)
    for e in range(len(chars)):
        support = chars[e, :k]
        if (support < 0).any():
            continue
        mixed = [c for c in range(n) if len(set(support[:, c])) != 1]
        if mixed:
            problems.add("mixed", f"episode {e}: class {mixed[0]}'s support images show different characters "
                         f"({', '.join(ref.index.name(x) for x in support[:, mixed[0]])}); each class is one character")
        elif len(set(support[0])) != n:
            problems.add("repeated", f"episode {e}: two classes show the same character; draw N distinct characters")
    return problems.verdict(f"{len(chars)} episodes (N={n}, K={k}): support rows in class order, "
                            f"one character per class")


# --- query_shuffled ---------------------------------------------------------

def query_shuffled_judge(ref: Reference, p: dict, result: RunResult, probe: Probe) -> Verdict:
    got = episodes_of(result, 0)
    if isinstance(got, Verdict):
        return got
    images, labels = got
    n, k = p["ways"], p["shots"]
    problems = Problems(out_of=len(labels))
    perms = labels[:, k].argmax(-1)
    one_hot = is_one_hot(labels[:, k]).all(-1)
    valid = np.array([bool(one_hot[e]) and sorted(perm.tolist()) == list(range(n)) for e, perm in enumerate(perms)])
    for e in np.flatnonzero(~valid):
        if not one_hot[e]:
            problems.add("one-hot", f"episode {e}: the query row's labels are not one-hot vectors")
        else:
            problems.add("permutation", f"episode {e}: query labels {perms[e].tolist()} are not a permutation of "
                         f"0..{n - 1}; the query row holds one image of each class")
    chars, _ = ref.index.identify(images)
    bad = unidentified(chars, "episode images")
    if bad:
        problems.add("unidentified", bad)
    owners = class_characters(chars, labels)
    for e in np.flatnonzero(valid & (chars >= 0).all((1, 2))):
        wrong = [j for j in range(n) if chars[e, k, j] != owners[e, perms[e, j]]]
        if wrong:
            j = wrong[0]
            problems.add("together", f"episode {e}, query position {j}: the image shows "
                         f"{ref.index.name(chars[e, k, j])} but its label says class {perms[e, j]} "
                         f"({ref.index.name(owners[e, perms[e, j]])}); shuffle the query images and their labels "
                         f"with the same permutation")
    distinct = {tuple(perm) for perm in perms[valid].tolist()}
    if valid.sum() > 1 and len(distinct) == 1:
        problems.add("fixed", f"the query row has the same order {perms[valid][0].tolist()} in all "
                     f"{int(valid.sum())} episodes; draw a new random permutation for every episode")
    return problems.verdict(f"{len(perms)} episodes: query images and labels permuted together, "
                            f"{len(distinct)} distinct orders")


# --- query_characters -------------------------------------------------------

def query_characters_judge(ref: Reference, p: dict, result: RunResult, probe: Probe) -> Verdict:
    got = identified_episodes(ref, result, 0, "episode images")
    if isinstance(got, Verdict):
        return got
    chars, k = got[2], p["shots"]
    problems = Problems(out_of=len(chars))
    for e in range(len(chars)):
        support, query = sorted(chars[e, 0].tolist()), sorted(chars[e, k].tolist())
        if support != query:
            extra = [ref.index.name(c) for c in set(query) - set(support)]
            detail = f" (e.g. {extra[0]}, not in the support rows)" if extra else " (a character repeated)"
            problems.add("characters", f"episode {e}: the query row shows other characters than the support "
                         f"rows{detail}; the query row must hold one new image of each of the N support characters")
    return problems.verdict(f"{len(chars)} episodes: the query row shows exactly the support characters")


# --- distinct_drawers -------------------------------------------------------

def drawers_judge(ref: Reference, p: dict, result: RunResult, probe: Probe) -> Verdict:
    got = identified_episodes(ref, result, 0, "episode images")
    if isinstance(got, Verdict):
        return got
    _, _, chars, drawers = got
    problems = Problems(out_of=len(chars))
    for e in range(len(chars)):
        seen = set()
        for pair in zip(chars[e].ravel().tolist(), drawers[e].ravel().tolist()):
            if pair[1] < 0:  # an image with a pixel-identical twin: its drawer cannot be told
                continue
            if pair in seen:
                problems.add("twice", f"episode {e}: the same image ({ref.index.name(pair[0])}, drawer "
                             f"{pair[1] + 1}) appears twice; draw the K+1 images of a character from K+1 "
                             f"distinct drawers (sample without replacement, the query image with the support ones)")
                break
            seen.add(pair)
    return problems.verdict(f"{len(chars)} episodes (K={p['shots']}): every character's K+1 images come from "
                            f"distinct drawers")


# --- split_disjoint ---------------------------------------------------------

def split_probe(ref: Reference, p: dict) -> Probe:
    return sample_probe([(p["ways"], p["shots"], s) for s in SPLITS], p["episodes"], p["seed"], folder_lists=True)


def split_params(p: dict) -> str:
    """Why these parameters cannot measure the splits ("" when they can)."""
    smallest = min(CS330_SIZES.values())
    if p["ways"] > smallest:
        return f"ways = {p['ways']}: the val split holds {smallest} characters; use 1 to {smallest}"
    return ""


def exposed_lists(ref: Reference, result: RunResult, i: int) -> dict[str, set[int]]:
    """{attribute: its characters} for the folder lists generator i exposes
    whose every folder is a character of the tree."""
    record = result.info["configs"][i]
    out = {}
    for j, name in enumerate(record.get("folder_lists", [])):
        folders = result.arrays.get(f"folders_{i}_{j}")
        if folders is None or folders.dtype.kind != "U":
            continue
        chars = {ref.index.character(str(f)) for f in folders.tolist()}
        if chars and min(chars) >= 0:
            out[name] = chars
    return out


def own_list(lists: dict[str, set[int]], seen: dict[str, set[int]], split: str) -> tuple[str, set[int]] | None:
    """The smallest exposed list that is the split's: it holds every character
    the split's episodes showed and none that another split's showed."""
    others = set().union(*(chars for s, chars in seen.items() if s != split))
    fits = [(len(chars), name, chars) for name, chars in lists.items() if seen[split] <= chars and not chars & others]
    return (min(fits)[1], min(fits)[2]) if fits else None


def split_judge(ref: Reference, p: dict, result: RunResult, probe: Probe) -> Verdict:
    ways, episodes = p["ways"], p["episodes"]
    problems = Problems()
    seen: dict[str, set[int]] = {}
    draws: dict[str, tuple[int, ...]] = {}  # distinct characters of each episode (N when it is right)
    lists: dict[str, dict[str, set[int]]] = {}
    for i, split in enumerate(SPLITS):
        got = identified_episodes(ref, result, i, f"the {split} generator")
        if isinstance(got, Verdict):
            problems.add(f"unusable {split}", got.message)
            continue
        seen[split] = set(got[2].ravel().tolist())
        draws[split] = tuple(len(set(episode.ravel().tolist())) for episode in got[2])
        lists[split] = exposed_lists(ref, result, i)
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        both = seen.get(a, set()) & seen.get(b, set())
        if both:
            problems.add(f"{a} {b}", f"{len(both)} characters came from both the {a} and the {b} generator "
                         f"(e.g. {ref.index.name(min(both))}); each character must belong to exactly one split")
    sizes = ref.split_sizes
    measured, wrong_size = [], False
    for split in seen:
        size, distinct = sizes[split], len(seen[split])
        own = own_list(lists[split], seen, split)
        exact = ""
        if own is not None:
            exact = (f"its {own[0]} lists {len(own[1])} (measured exactly: of the generator's folder lists, the "
                     f"one that holds every character its episodes showed and none of the other splits')")
        per = sorted(set(draws[split]))
        drawn = (f"its {len(draws[split])} episodes of {per[0] if len(per) == 1 else f'{per[0]} to {per[-1]}'} "
                 f"characters showed {distinct} distinct characters (identified by their pixels)")
        low, high = coverage.acceptance(size, draws[split]) if distinct <= size else (0, size)
        expected = (f"a split of {size} sampled uniformly shows {low} to {high} "
                    f"(probability {1 - 2 * coverage.FALSE_FAIL:.6f})")
        measured.append(f"{split}: {distinct} distinct characters ({low}-{high} expected of {size})"
                        + (f", its {own[0]} lists {len(own[1])}" if own else ""))
        listed_right = own is not None and len(own[1]) == size
        if own is not None and not listed_right:
            holds = f"holds {len(own[1])} characters"
        elif distinct > size:
            holds = f"holds at least {distinct} characters"
        elif not low <= distinct <= high and not listed_right:
            holds = f"holds about {coverage.estimate_size(distinct, draws[split]):.0f} characters"
        elif not low <= distinct <= high:
            problems.add(f"uniform {split}", f"the {split} generator's {own[0]} lists the {size} characters of "
                         f"its split, but {drawn}, where {expected}: draw each episode's N characters uniformly "
                         f"from the split, with random.sample(self.folders, N)")
            continue
        else:
            continue
        wrong_size = True
        problems.add(f"size {split}", f"the {split} split {holds}, not {size}: "
                     + "; ".join(x for x in (exact, f"{drawn}, where {expected}" if distinct <= size else drawn) if x))
    fix = (f"split the shuffled character folders {' / '.join(str(sizes[s]) for s in SPLITS)} (train / val / "
           f"test): folders[:1100], folders[1100:1200], folders[1200:]") if wrong_size else ""
    return problems.verdict(f"{episodes} episodes of {ways} ways per split, characters identified by their "
                            f"pixels, sizes also read from the generators' folder lists where exposed: "
                            f"{'; '.join(measured)}; no character in two splits", fix)


CHECKS = [
    Check("data_shapes", {"configs": [[2, 2], [3, 1], [5, 1]], "episodes": 3}, shapes_probe, shapes_judge,
          validate=shapes_params),
    Check("support_rows", {"ways": 4, "shots": 2, "episodes": 20}, one_config_probe(), support_judge),
    Check("query_shuffled", {"ways": 3, "shots": 1, "episodes": 40}, one_config_probe(), query_shuffled_judge),
    Check("query_characters", {"ways": 4, "shots": 1, "episodes": 20}, one_config_probe(), query_characters_judge),
    Check("distinct_drawers", {"ways": 4, "shots": 3, "episodes": 30}, one_config_probe(), drawers_judge),
    Check("split_disjoint", {"ways": 50, "shots": 1, "episodes": 30}, split_probe, split_judge,
          validate=split_params),
]

"""Specimen submissions of the homework: a correct one and its broken variants, made on the fly.

For ``scripts/grading-demo``, generated classes and the grading tests. The
correct submission (correct/submission/: load_data.py, mann.py) marks the lines a variant
may replace with `# GRADER-TEST: <marker>`; a variant replaces whole marked
lines (keeping their indentation) or adds code at the top of a file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

CORRECT = Path(__file__).resolve().parent / "correct"

# name: {file: {marker: replacement lines}}; expected failures are in the tests.
BROKEN = {
    "unshuffled_query": {"load_data.py": {"query-order": "order = np.arange(n)"}},
    "labels_only_shuffled": {"load_data.py": {"query-images": "pass"}},
    "query_other_characters": {"load_data.py": {"query-images": (
        "images[-1] = np.stack([self.read(os.path.join(f, sorted(os.listdir(f))[0]))"
        " for f in random.sample(self.folders, n)])[order]")}},
    "support_shuffled": {"load_data.py": {"return": (
        "perm = np.random.permutation(n)\n"
        "images[0], labels[0] = images[0][perm], labels[0][perm]\n"
        "return images, labels")}},
    "drawers_with_replacement": {"load_data.py": {"drawers": (
        "files = [random.choice(sorted(os.listdir(folder))) for _ in range(k1)]")}},
    "split_overlap": {"load_data.py": {"split": "self.folders = folders"}},
    "float64_images": {"load_data.py": {"return": "return images.astype(np.float64), labels"}},
    "not_inverted": {"load_data.py": {"ink": "image = image / image.max()"}},
    "leaked_query_labels": {"mann.py": {"mask": "pass"}},
    "loss_all_rows": {"mann.py": {"loss": "logits = preds.reshape(-1, n)",
                                  "loss-target": "target = labels.reshape(-1, n).argmax(-1)"}},
    "wrong_reshape_order": {"mann.py": {"sequence": (
        "sequence = torch.cat([input_images, shown], dim=-1).transpose(1, 2).reshape(b, k1 * n, -1)")}},
    "default_init": {"mann.py": {"init": "for layer in ():"}},
    "two_layer_lstm": {"mann.py": {"layer1": (
        "self.layer1 = nn.LSTM(num_classes + 784, hidden_dim, num_layers=2, batch_first=True)")}},
    "flat_output": {"mann.py": {"output": "return out"}},
    # modelled on bugs of real submissions (issue 16)
    "split_800_100_723": {"load_data.py": {"split": (
        "self.metatrain_character_folders = folders[:800]\n"
        "self.metaval_character_folders = folders[800:900]\n"
        "self.metatest_character_folders = folders[900:]\n"
        "self.folders = {'train': self.metatrain_character_folders, 'val': self.metaval_character_folders}"
        ".get(batch_type, self.metatest_character_folders)")}},
    "lazy_split_800": {"load_data.py": {  # the split made in _sample from all folders: no list to read
        "split": "self.all_folders, self.batch_type = folders, batch_type",
        "classes": ("pool = {'train': self.all_folders[:800], 'val': self.all_folders[800:900]}"
                    ".get(self.batch_type, self.all_folders[900:])\n"
                    "classes = random.sample(pool, n)")}},
    "class_major_reshape": {"load_data.py": {"query-order": (  # built [N, K+1, 784], reshaped as if [K+1, N, 784]
        "images = np.ascontiguousarray(images.transpose(1, 0, 2)).reshape(k1, n, -1)\n"
        "order = np.random.permutation(n)")}},
    "query_drawn_separately": {"load_data.py": {"drawers": (  # the query image may repeat a support image
        "files = random.sample(sorted(os.listdir(folder)), k1 - 1)\n"
        "files.append(random.choice(sorted(os.listdir(folder))))")}},
    "torch_tensors": {"load_data.py": {"return": "return torch.from_numpy(images), torch.from_numpy(labels)"}},
    "tensors_int64_labels": {"load_data.py": {"return": (
        "return torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))")}},
    "int64_labels": {"load_data.py": {"return": "return images, labels.astype(np.int64)"}},
    "float64_labels": {"load_data.py": {"return": "return images, labels.astype(np.float64)"}},
}

# Forwards that passed mann_output and query_masked while those checked only the type,
# a shape with K+1 = N, and that the query labels change nothing; expected failures are in the tests.
TRICKS = {
    "zero_forward": {"mann.py": {"output": "return torch.zeros(b, k1, n, n)"}},
    "constant_forward": {"mann.py": {"output": "return torch.arange(n, dtype=torch.float32).expand(b, k1, n, n)"}},
    "all_labels_masked": {"mann.py": {"mask": "shown[:] = 0"}},  # hides the support labels too
    "class_major_output": {"mann.py": {"output": "return out.reshape(b, k1, n, n).transpose(1, 2)"}},  # [B, N, K+1, N]
}

# Correct submissions written another way the homework allows: full marks on every test.
CORRECT_VARIANTS = {
    "self_shapes": {"mann.py": {  # the model's own N and K+1, as most students write it
        "sequence": ("sequence = torch.cat([input_images, shown], dim=-1)"
                     ".reshape(b, self.samples_per_class * self.num_classes, -1)"),
        "output": "return out.reshape(b, self.samples_per_class, self.num_classes, self.num_classes)",
        "loss": "logits = preds[:, -1].reshape(-1, self.num_classes)",
        "loss-target": "target = labels[:, -1].reshape(-1, self.num_classes).argmax(-1)"}},
    "lazy_split": {"load_data.py": {  # the split made in _sample: sizes measured from the pixels alone
        "split": "self.all_folders, self.batch_type = folders, batch_type",
        "classes": ("pool = {'train': self.all_folders[:1100], 'val': self.all_folders[1100:1200]}"
                    ".get(self.batch_type, self.all_folders[1200:])\n"
                    "classes = random.sample(pool, n)")}},
}

# A sibling module mann.py imports, and the two ways to import it.
RNN_MODULE = "from torch import nn\n\n\ndef lstm(inputs, hidden):\n    return nn.LSTM(inputs, hidden, batch_first=True)\n"
USES_RNN = {"mann.py": {"layer1": "self.layer1 = lstm(num_classes + 784, hidden_dim)"}}
IMPORT_RNN = {"package": "from .rnn import lstm", "module": "from rnn import lstm"}


LAYOUTS = {"submission": "submission", "src": "src/submission", "flat": ""}


def make_variant(dest: Path, edits: dict[str, dict[str, str]], prefix: dict[str, str] | None = None,
                 layout: str = "submission", package: bool | None = None,
                 extra: dict[str, str] | None = None) -> Path:
    """Write a copy of the correct submission with ``edits`` applied into ``dest``.

    layout: "submission" (dest/submission/...), "src" (dest/src/submission/),
    "flat" (files directly in dest) or any folder below dest ("hw1/submission").
    package: write __init__.py (default: for "src" only). extra: more files
    beside the two, {name: text}.
    """
    code = dest / LAYOUTS.get(layout, layout)
    code.mkdir(parents=True, exist_ok=True)
    for source in sorted((CORRECT / "submission").glob("*.py")):
        lines = source.read_text().splitlines()
        for marker, replacement in edits.get(source.name, {}).items():
            tag = f"# GRADER-TEST: {marker}"
            hits = [i for i, line in enumerate(lines) if line.rstrip().endswith(tag)]
            assert len(hits) == 1, f"{source.name} has {len(hits)} lines marked {tag}"
            indent = lines[hits[0]][: len(lines[hits[0]]) - len(lines[hits[0]].lstrip())]
            lines[hits[0]] = "\n".join(indent + part for part in replacement.splitlines())
        text = "\n".join(lines) + "\n"
        if prefix and source.name in prefix:
            text = prefix[source.name] + "\n" + text
        (code / source.name).write_text(text)
    if package or (package is None and layout == "src"):
        (code / "__init__.py").write_text("")
    for name, text in (extra or {}).items():
        (code / name).write_text(text)
    return dest


def write_results(dest: Path, accuracy: dict[tuple[int, int], float], episodes: int = 100) -> Path:
    """The deliverables ``dest/mann_results_{K}_{N}.npy`` of the runs ``{(K, N): query accuracy}``, saved as
    the homework does: labels, then predictions, each float32 [episodes, N, N] (query rows, one-hot),
    with exactly round(accuracy · episodes · N) predictions right."""
    dest.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for (shots, ways), right in accuracy.items():
        truth = np.stack([rng.permutation(ways) for _ in range(episodes)])
        wrong = rng.permutation(truth.size) >= round(right * truth.size)
        guess = np.where(wrong.reshape(truth.shape), (truth + 1) % ways, truth)
        eye = np.eye(ways, dtype=np.float32)
        with open(dest / f"mann_results_{shots}_{ways}.npy", "wb") as f:
            np.save(f, eye[truth])
            np.save(f, eye[guess])
    return dest


def copy_correct(dest: Path) -> Path:
    shutil.copytree(CORRECT, dest)
    return dest


# Training that a correct MANN passes on the synthetic store in a few seconds
# (the default rubric's 400 steps of B=128, H=128 take minutes).


# Submissions that attack the grader's time or the sandbox: name -> (edits, prefix),
# as for make_variant. Their expected verdicts are in the grading tests.
CHAIN_OF_FORKS = '''
import os as _os
if _os.fork() == 0:  # each process forks the next in a new session and exits
    while True:
        _os.setsid()
        if _os.fork() != 0:
            _os._exit(0)
'''
HOSTILE = {
    "forward_loops": ({"mann.py": {"output": "while True: pass"}}, None),
    "slow_loader": ({"load_data.py": {"return": "__import__('time').sleep(2)\nreturn images, labels"}}, None),
    "loader_sleeps": ({"load_data.py": {"return": "__import__('time').sleep(600)"}}, None),
    "loss_cpu_loop": ({"mann.py": {"loss": "while True: pass"}}, None),
    "prints_forever": ({"mann.py": {"loss": "while True: print('spam' * 100)"}}, None),
    "huge_allocation": ({"mann.py": {"layer1": (
        "self.waste = __import__('numpy').ones(1 << 33, dtype='uint8')\n"
        "self.layer1 = nn.LSTM(num_classes + 784, hidden_dim, batch_first=True)")}}, None),
    "exits": ({"load_data.py": {"return": "__import__('os')._exit(0)"}}, None),
    "segfault": ({"mann.py": {"sequence": "__import__('ctypes').string_at(0)"}}, None),
    "chain_of_forks": ({}, {"mann.py": CHAIN_OF_FORKS}),
}
# the costliest kinds come first: a class of any size has them
HOSTILE_ORDER = ("forward_loops", "slow_loader", "loader_sleeps", "loss_cpu_loop", "chain_of_forks", "forward_loops",
                 "prints_forever", "huge_allocation", "exits", "segfault", "slow_loader", "loss_cpu_loop",
                 "forward_loops", "chain_of_forks", "segfault", "exits")


def make_class(folder: Path, size: int = 40) -> dict[str, str]:
    """Write a class of ``size`` submissions into ``folder``: a quarter correct
    (the correct one and its other correct forms), 35% with one known bug each
    (BROKEN, in turn) and the rest hostile (HOSTILE_ORDER, in turn). Returns
    {name: "correct" | "buggy" | "hostile"}."""
    correct = max(1, size // 4)
    buggy = min(size - correct, round(0.35 * size))
    kinds: dict[str, str] = {}
    forms = [("correct", {})] + list(CORRECT_VARIANTS.items())
    for i in range(correct):
        form, edits = forms[i % len(forms)]
        kinds[make_variant(folder / f"{i:02d}-correct-{form}", edits).name] = "correct"
    bugs = list(BROKEN)
    for i in range(buggy):
        bug = bugs[i % len(bugs)]
        kinds[make_variant(folder / f"{correct + i:02d}-buggy-{bug}", BROKEN[bug]).name] = "buggy"
    for i in range(size - correct - buggy):
        kind = HOSTILE_ORDER[i % len(HOSTILE_ORDER)]
        edits, prefix = HOSTILE[kind]
        kinds[make_variant(folder / f"{correct + buggy + i:02d}-hostile-{kind}", edits, prefix).name] = "hostile"
    return kinds

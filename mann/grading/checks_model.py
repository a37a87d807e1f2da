"""Tests of the student's ``MANN`` and ``loss_function`` (mann.py).

Inputs are reference episodes (the project's sampler on the ``cs330`` test
split); expected values come from the reference model in mann/models/mann.py,
computed here in the grader.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from episodes.sampler import EpisodeSampler
from mann.grading.check import REAL_KINDS, Check, Problems, Verdict, fail, ok, shape_problem
from mann.grading.reference import Reference
from mann.grading.runner import Probe, RunResult
from episodes.layout import IMAGE_DIM
from mann.models.mann import MANN, loss_function


def reference_episodes(ref: Reference, ways: int, shots: int, batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """images float32 [B, K+1, N, 784], labels float32 [B, K+1, N, N] from the reference sampler."""
    return EpisodeSampler(ref.test, ways, shots, batch_size=batch, seed=seed).sample()


def model_job(p: dict, op: str, **extra) -> dict:
    return {"op": op, "ways": p["ways"], "shots": p["shots"], "hidden": p.get("hidden", 32), "seed": p["seed"], **extra}


def output_of(result: RunResult, key: str, want: tuple[int, ...]) -> np.ndarray | Verdict:
    """The output ``key`` as float64 of shape ``want``, or a failing Verdict saying why not."""
    out = result.arrays.get(key)
    if out is None:
        return fail(not_a_tensor(result))
    if tuple(out.shape) != want:
        return fail(wrong_shape(out, want))
    if out.dtype.kind not in REAL_KINDS:
        return fail(f"MANN.forward returned a tensor of {out.dtype}; expected float32")
    return out.astype(np.float64)


def not_a_tensor(result: RunResult) -> str:
    return (f"MANN.forward returned {result.info.get('output', {}).get('type', 'something')} "
            f"that is not a numeric tensor")


def wrong_shape(out: np.ndarray, want: tuple[int, ...]) -> str:
    return f"MANN.forward returned shape {list(out.shape)}; expected [B, K+1, N, N] = {list(want)}"


# --- mann_layers ------------------------------------------------------------

def layers_probe(ref: Reference, p: dict) -> Probe:
    return Probe("model", model_job(p, "layers"), {})


def layers_judge(ref: Reference, p: dict, result: RunResult, probe: Probe) -> Verdict:
    n, h = p["ways"], p["hidden"]
    want = {
        "layer1": {"is_lstm": True, "input_size": n + IMAGE_DIM, "hidden_size": h, "batch_first": True,
                   "num_layers": 1, "bidirectional": False, "proj_size": 0},
        "layer2": {"is_lstm": True, "input_size": h, "hidden_size": n, "batch_first": True,
                   "num_layers": 1, "bidirectional": False, "proj_size": 0},
    }
    problems = Problems()
    for name, attrs in want.items():
        got = result.info["layers"].get(name, {})
        if not got.get("is_lstm"):
            problems.add(name, f"MANN({n}, K+1, {h}).{name} is {got.get('type', 'missing')}, not a torch.nn.LSTM")
            continue
        wrong = [f"{attr} is {got.get(attr)}, expected {value}" for attr, value in attrs.items() if got.get(attr) != value]
        if wrong:
            problems.add(name, f"MANN({n}, K+1, {h}).{name}: {'; '.join(wrong)}")
    return problems.verdict(f"layer1 = LSTM({n + IMAGE_DIM}, {h}), layer2 = LSTM({h}, {n}), batch-first",
                            "expected layer1 = LSTM(N + 784, H, batch_first=True), layer2 = LSTM(H, N, batch_first=True)")


# --- mann_init --------------------------------------------------------------

def init_probe(ref: Reference, p: dict) -> Probe:
    return Probe("model", model_job(p, "init"), {})


def lstm_shapes(input_size: int, hidden: int) -> dict[str, tuple[tuple[int, ...], str]]:
    """{parameter: (its shape in an nn.LSTM(input_size, hidden), that shape in words)}."""
    gates = 4 * hidden
    return {"weight_ih": ((gates, input_size), "[4·hidden, input]"), "weight_hh": ((gates, hidden), "[4·hidden, hidden]"),
            "bias_ih": ((gates,), "[4·hidden]"), "bias_hh": ((gates,), "[4·hidden]")}


def init_judge(ref: Reference, p: dict, result: RunResult, probe: Probe) -> Verdict:
    n, h = p["ways"], p["hidden"]
    problems = Problems()
    for layer, (input_size, hidden) in {"layer1": (n + IMAGE_DIM, h), "layer2": (h, n)}.items():
        shapes = lstm_shapes(input_size, hidden)
        names = [f"{layer}.{w}_l0" for w in shapes]
        missing = [x for x in names if x not in result.arrays]
        if missing:
            problems.add(f"{layer} missing", f"MANN has no parameter {', '.join(missing)}; "
                         f"{layer} must be an nn.LSTM with biases")
            continue
        # Shapes first: the checks below square weight_hh, whatever its size.
        wrong = [shape_problem(result.arrays[name], shape, name, words)
                 for name, (shape, words) in zip(names, shapes.values())]
        if any(wrong):
            problems.add(f"{layer} shapes", f"{'; '.join(w for w in wrong if w)} (nn.LSTM({input_size}, {hidden}))")
            continue
        w_ih, w_hh, b_ih, b_hh = (result.arrays[x].astype(np.float64) for x in names)
        fan_out, fan_in = w_ih.shape
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        spread = np.abs(w_ih).max()
        if spread > bound * (1 + 1e-5) or spread < 0.9 * bound or abs(w_ih.std() - bound / math.sqrt(3)) > 0.1 * bound:
            problems.add(f"{layer} xavier", f"{layer}.weight_ih_l0 spans ±{spread:.4f} (std {w_ih.std():.4f}); "
                         f"Xavier-uniform gives U(±{bound:.4f}) (std {bound / math.sqrt(3):.4f}): "
                         f"use nn.init.xavier_uniform_")
        gram = w_hh.T @ w_hh
        if not np.allclose(gram, np.eye(gram.shape[0]), atol=1e-4):
            problems.add(f"{layer} orthogonal", f"{layer}.weight_hh_l0 is not orthogonal (max |W^T W - I| = "
                         f"{np.abs(gram - np.eye(gram.shape[0])).max():.3g}): use nn.init.orthogonal_")
        if np.abs(b_ih).max() > 0 or np.abs(b_hh).max() > 0:
            problems.add(f"{layer} biases", f"{layer} biases are not zero: use nn.init.zeros_ on bias_ih_l0 "
                         f"and bias_hh_l0")
    return problems.verdict("Xavier-uniform input weights, orthogonal recurrent weights, zero biases in both layers")


# --- the shapes and inputs of forward tests ---------------------------------

def layout_problem(p: dict) -> str:
    """Why an output of [B, K+1, N, N] for these parameters would not tell a
    wrong layout from the right one ("" when it would)."""
    b, k1, n = p["batch"], p["shots"] + 1, p["ways"]
    if k1 == n:
        return (f"shots + 1 = ways = {n}: an output laid out [B, N, K+1, N] would have the expected shape; "
                f"choose shots + 1 != ways")
    if b in (k1, n):
        return (f"batch = {b} equals {'ways' if b == n else 'shots + 1'}: an output with those axes swapped "
                f"would have the expected shape; choose a batch other than {k1} and {n}")
    return ""


def two_classes(p: dict) -> str:
    """Why these parameters cannot change the labels of a row ("" when they can)."""
    if p["ways"] < 2:
        return f"ways = {p['ways']}: one class has only one labelling, so no label can change; use 2 or more"
    return ""


def forward_params(p: dict) -> str:
    return two_classes(p) or layout_problem(p)


# A forward that ignores an input returns bit-identical logits; a freshly
# initialised MANN moves its query logits by ~1e-3 (support labels) to ~1e-1
# (support images) when they change.
UNCHANGED = 1e-6


def support_changed(ref: Reference, p: dict, images: torch.Tensor, labels: torch.Tensor) -> dict[str, np.ndarray]:
    """The episodes (images [B, K+1, N, 784], labels [B, K+1, N, N]) changed
    in their support rows only: ``images_support`` holds other episodes'
    support images (the same query images), ``labels_support`` each support
    row's labels rolled by one class (another valid labelling)."""
    k = p["shots"]
    other, _ = reference_episodes(ref, p["ways"], k, p["batch"], p["seed"] + 1)
    images_support, labels_support = images.clone(), labels.clone()
    images_support[:, :k] = other[:, :k]
    labels_support[:, :k] = labels[:, :k].roll(1, dims=-1)
    return {"images_support": images_support.numpy(), "labels_support": labels_support.numpy()}


# [images, labels, output]: forward on the support-changed inputs, beside the job's own pairs
SUPPORT_PAIRS = [["images_support", "labels", "output_images"], ["images", "labels_support", "output_labels"]]


def query_logits(out: np.ndarray | None, want: tuple[int, ...]) -> np.ndarray | None:
    """float64 [B, N, N]: the query row of an output with as many real elements
    as ``want`` = [B, K+1, N, N] (read in that layout); None for any other."""
    if out is None or out.dtype.kind not in REAL_KINDS or out.size != math.prod(want):
        return None
    return out.reshape(want)[:, -1].astype(np.float64)


def ignored_support(result: RunResult, want: tuple[int, ...], base: str) -> str:
    """Why the query logits of ``base`` and of SUPPORT_PAIRS' outputs show that
    forward ignores the support rows ("" when they change with both the
    support images and labels, or cannot be read: that is another problem)."""
    logits = query_logits(result.arrays.get(base), want)
    if logits is None or not np.isfinite(logits).all():
        return ""
    unchanged = []
    for what, key in (("images", "output_images"), ("labels", "output_labels")):
        other = query_logits(result.arrays.get(key), want)
        if other is None:
            return f"MANN.forward returned an output of another shape or type when only the support {what} changed"
        if not np.isfinite(other).all():
            return f"MANN.forward returned NaN or infinite values when only the support {what} changed"
        if not float(np.abs(other - logits).max()) > UNCHANGED:
            unchanged.append(what)
    if not unchanged:
        return ""
    fix = {"images": "its input images: feed them to layer1 with the labels",
           "labels": "its input labels: zero only the query row's labels, not the support rows'"}
    if len(unchanged) == 2:
        return ("the query predictions do not change when the support images or labels change: forward seems to "
                "ignore its input; return layer2's output over the sequence of the support images and labels "
                "and the query images, not a constant")
    return (f"the query predictions do not change when the support {unchanged[0]} change: forward seems to "
            f"ignore {fix[unchanged[0]]}")


# --- mann_output ------------------------------------------------------------

def output_probe(ref: Reference, p: dict) -> Probe:
    images, labels = reference_episodes(ref, p["ways"], p["shots"], p["batch"], p["seed"])
    arrays = {"images": images.numpy(), "labels": labels.numpy(), **support_changed(ref, p, images, labels)}
    return Probe("model", model_job(p, "forwards", pairs=[["images", "labels", "output"], *SUPPORT_PAIRS]), arrays)


def output_judge(ref: Reference, p: dict, result: RunResult, probe: Probe) -> Verdict:
    b, k1, n = p["batch"], p["shots"] + 1, p["ways"]
    want = (b, k1, n, n)
    described = result.info.get("output", {})
    out = result.arrays.get("output")
    problems = Problems()
    if described.get("type") != "torch.Tensor":
        problems.add("type", f"MANN.forward returned {described.get('type')}; expected a torch.Tensor")
    if out is None:
        problems.add("numeric", not_a_tensor(result))
    elif tuple(out.shape) != want:
        problems.add("shape", wrong_shape(out, want))
    if out is not None and described.get("dtype", "float32") != "float32":
        problems.add("dtype", f"MANN.forward returned {described.get('dtype')}; expected float32")
    # computed on only when it has the shape asked for (a huge one costs the grader)
    if out is not None and not problems and out.dtype.kind in REAL_KINDS and not np.isfinite(out).all():
        problems.add("finite", "MANN.forward returned NaN or infinite values")
    ignored = ignored_support(result, want, "output")
    if ignored:
        problems.add("ignored", ignored)
    return problems.verdict(f"forward on B={b}, K+1={k1}, N={n} returned a float32 tensor {list(want)} whose "
                            f"query predictions change with the support images and with the support labels")


# --- query_masked -----------------------------------------------------------

def masked_probe(ref: Reference, p: dict) -> Probe:
    images, labels = reference_episodes(ref, p["ways"], p["shots"], p["batch"], p["seed"])
    other = labels.clone()
    other[:, -1] = labels[:, -1].roll(1, dims=-1)  # another valid one-hot labelling of the query row
    arrays = {"images": images.numpy(), "labels": labels.numpy(), "labels_query": other.numpy(),
              **support_changed(ref, p, images, labels)}
    pairs = [["images", "labels", "output_a"], ["images", "labels_query", "output_b"], *SUPPORT_PAIRS]
    return Probe("model", model_job(p, "forwards", pairs=pairs), arrays)


def masked_judge(ref: Reference, p: dict, result: RunResult, probe: Probe) -> Verdict:
    a, b = result.arrays.get("output_a"), result.arrays.get("output_b")
    if a is None or b is None:
        return fail(not_a_tensor(result))
    if a.shape != b.shape:
        return fail(f"MANN.forward returned shapes {list(a.shape)} and {list(b.shape)} for the same images")
    # The shape itself is mann_output's to judge (a flat [B, (K+1)·N, N] output may
    # mask well); what bounds the work here is the element count of [B, K+1, N, N].
    want = (p["batch"], p["shots"] + 1, p["ways"], p["ways"])
    wrong = shape_problem(a.reshape(want) if a.size == math.prod(want) else a, want,
                          "MANN.forward's output", "[B, K+1, N, N] (or as many elements)")
    if wrong:
        return fail(wrong)
    problems = Problems()
    diff = float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max()) if a.size else 0.0
    if not diff <= 1e-6:
        problems.add("leak", f"changing only the query row's labels changed the output by up to {diff:.3g}: the "
                     f"model sees the query labels. Zero the last row of the labels before the LSTMs (without "
                     f"modifying the caller's tensor)")
    # identical outputs prove nothing of a forward that ignores every input
    ignored = ignored_support(result, want, "output_a")
    if ignored:
        problems.add("ignored", ignored)
    return problems.verdict("outputs identical whatever the query row's labels, query predictions that change "
                            "with the support images and with the support labels")


# --- loss_reference ---------------------------------------------------------

def loss_cases(p: dict) -> list[dict]:
    """One model job per case: MANN(N, K+1, H) built for that case's own shapes."""
    return [{"ways": ways, "shots": shots, "hidden": p["hidden"]} for _, ways, shots in p["cases"]]


def loss_probe(ref: Reference, p: dict) -> Probe:
    generator = torch.Generator().manual_seed(p["seed"])
    arrays = {}
    for i, (batch, ways, shots) in enumerate(p["cases"]):
        _, labels = reference_episodes(ref, ways, shots, batch, p["seed"] + i)
        preds = 2.0 * torch.randn(labels.shape, generator=generator)
        arrays[f"preds_{i}"], arrays[f"labels_{i}"] = preds.numpy(), labels.numpy()
    return Probe("model", {"op": "loss", "seed": p["seed"], "cases": loss_cases(p)}, arrays)


def loss_judge(ref: Reference, p: dict, result: RunResult, probe: Probe) -> Verdict:
    problems = Problems(out_of=len(p["cases"]), unit="cases")
    wrong_value = False
    records = result.info.get("cases", [])
    for i, (batch, ways, shots) in enumerate(p["cases"]):
        where = f"B={batch}, N={ways}, K={shots} (MANN({ways}, {shots + 1}, {p['hidden']}))"
        record = records[i] if i < len(records) else {}
        if "error" in record:
            problems.add(f"error {i}", f"{where}: {record['error']['message']}")
            continue
        preds, labels = (torch.from_numpy(probe.arrays[f"{x}_{i}"]) for x in ("preds", "labels"))
        expected = float(loss_function(preds, labels))
        value = result.arrays.get(f"value_{i}")
        if value is None or value.size != 1 or value.dtype.kind not in REAL_KINDS:
            shape = list(value.shape) if value is not None else ""
            problems.add(f"scalar {i}", f"{where}: loss_function returned {record.get('value', {}).get('type')} "
                         f"{shape}; expected a scalar tensor")
            continue
        got = float(value.reshape(()))
        if not abs(got - expected) <= p["tolerance"]:
            wrong_value = True
            problems.add(f"value {i}", f"{where}: loss_function gave {got:.6f}, the reference cross-entropy over "
                         f"the B·N query predictions is {expected:.6f} (difference {abs(got - expected):.2g} > "
                         f"{p['tolerance']:g})")
    return problems.verdict(f"{len(p['cases'])} cases, each on a MANN built for its N and K, within "
                            f"{p['tolerance']:g} of the reference",
                            "average F.cross_entropy over the query row (the last row) only" if wrong_value else "")


# --- predictions_reference --------------------------------------------------

def reference_model(p: dict) -> MANN:
    generator = torch.Generator().manual_seed(p["seed"] + 7)
    model = MANN(p["ways"], p["shots"] + 1, p["hidden"], generator=generator)
    with torch.no_grad():  # nonzero biases, so a model that drops them differs
        for name, param in model.named_parameters():
            if "bias" in name:
                param.copy_(0.1 * torch.randn(param.shape, generator=generator))
    return model.eval()


def predictions_probe(ref: Reference, p: dict) -> Probe:
    images, labels = reference_episodes(ref, p["ways"], p["shots"], p["batch"], p["seed"])
    arrays = {f"w:{k}": v.numpy() for k, v in reference_model(p).state_dict().items()}
    arrays.update(images=images.numpy(), labels=labels.numpy())
    return Probe("model", model_job(p, "reference"), arrays)


def predictions_judge(ref: Reference, p: dict, result: RunResult, probe: Probe) -> Verdict:
    images, labels = torch.from_numpy(probe.arrays["images"]), torch.from_numpy(probe.arrays["labels"])
    with torch.no_grad():
        expected = reference_model(p)(images, labels).numpy().astype(np.float64)
    out = output_of(result, "output", tuple(expected.shape))
    if isinstance(out, Verdict):
        return out
    diff = float(np.abs(out - expected).max())
    if not diff <= p["tolerance"]:
        return fail(f"with the reference weights loaded, predictions differ from the reference model's by up "
                    f"to {diff:.3g} (> {p['tolerance']:g}); check the order of the sequence (row by row: "
                    f"[B, K+1, N, 784+N] -> [B, (K+1)·N, 784+N]), the label masking and the output reshape")
    return ok(f"max difference {diff:.2g} from the reference model on {p['batch']} episodes")


CHECKS = [
    Check("mann_layers", {"ways": 3, "shots": 1, "hidden": 32}, layers_probe, layers_judge),
    Check("mann_init", {"ways": 3, "shots": 1, "hidden": 32}, init_probe, init_judge),
    # B, K+1 and N all differ: an output with two of its axes swapped has the wrong shape
    Check("mann_output", {"ways": 4, "shots": 2, "hidden": 32, "batch": 5}, output_probe, output_judge,
          validate=forward_params),
    Check("query_masked", {"ways": 3, "shots": 1, "hidden": 32, "batch": 4}, masked_probe, masked_judge,
          validate=two_classes),
    Check("loss_reference", {"cases": [[4, 3, 1], [2, 5, 2], [1, 2, 1]], "hidden": 32, "tolerance": 1e-5},
          loss_probe, loss_judge),
    Check("predictions_reference", {"ways": 5, "shots": 2, "hidden": 32, "batch": 4, "tolerance": 1e-4},
          predictions_probe, predictions_judge, validate=layout_problem),
]

"""The layout holds: no import circle among the project's modules (function-level imports
included), data flows one way between the layers, and the command line starts without torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Lower layers first: a module may import its own layer and those before it, never a later one.
LAYERS = ["episodes", "mann.stats", "mann.provenance", "mann.signals", "mann.models", "mann.training", "mann.sweep",
          "mann.reporting", "mann.grading", "mann.bench", "mann.commands"]


def project_modules() -> dict[str, Path]:
    found = {}
    for package in ("episodes", "mann"):
        for path in (REPO / package).rglob("*.py"):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
            found[name] = path
    return found


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules ``name`` imports anywhere in its file (module level or inside functions)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".")
                keep = len(parts) - node.level + (path.name == "__init__.py")
                base = ".".join(parts[:keep] + ([base] if base else []))
            candidates = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for candidate in candidates:
            while candidate and candidate not in known:
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name:
                out.add(candidate)
    return out


def graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(name, path, set(modules)) for name, path in modules.items()}


def related(a: str, b: str) -> bool:
    """A package and its own submodules (a package may import what it holds)."""
    return a.startswith(b + ".") or b.startswith(a + ".")


def test_no_import_circle_among_project_modules():
    edges = graph()
    circles = []

    def walk(start, node, path):
        for nxt in edges[node]:
            if related(node, nxt):
                continue
            if nxt == start:
                circles.append(" -> ".join([*path, nxt]))
            elif nxt not in path and len(path) < 12 and nxt > start:
                walk(start, nxt, [*path, nxt])

    for module in sorted(edges):
        walk(module, module, [module])
    assert not circles, "import circles:\n" + "\n".join(circles[:10])


def layer(module: str) -> int:
    return max(i for i, prefix in enumerate(LAYERS) if module == prefix or module.startswith(prefix + ".")
               or (prefix == "mann.stats" and module == "mann"))


def test_imports_flow_from_the_data_layer_up_to_the_commands():
    upward = [f"{a} imports {b}" for a, targets in graph().items() for b in targets
              if not related(a, b) and b != "mann" and layer(b) > layer(a)]
    assert not upward, "\n".join(sorted(upward))
    assert not [b for a, t in graph().items() if a.startswith("episodes") for b in t if b.startswith("mann")]


@pytest.mark.parametrize("command", ["", "train", "sweep", "report", "lake", "bench", "data", "grade"])
def test_help_loads_neither_torch_nor_pandas(command):
    probe = (
        "import sys, time\n"
        "t = time.perf_counter()\n"
        "from mann.commands import main\n"
        f"try:\n    main({[c for c in command.split() if c] + ['--help']!r})\n"
        "except SystemExit:\n    pass\n"
        "print(round(time.perf_counter() - t, 3), file=sys.stderr)\n"
        "print(sorted(m for m in ('torch', 'pandas', 'matplotlib', 'learn2learn') if m in sys.modules), file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO)
    seconds, loaded = result.stderr.strip().splitlines()[-2:]
    assert result.returncode == 0 and "usage: mann" in result.stdout
    assert loaded == "[]", f"mann {command} --help imported {loaded}"
    print(f"mann {command} --help: {seconds} s")  # the figure the README quotes (-s shows it)

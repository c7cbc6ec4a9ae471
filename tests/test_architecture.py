"""The house rules of softprompt's imports: rooms import only lower rooms, and nothing cycles.

Every module under ``softprompt/`` is parsed with `ast` and each of its imports,
at module level or inside a function, becomes an edge from the module to the
module it names (``from a.b import c`` names ``a.b.c`` when that is a module,
else ``a.b``). The rules, checked on that graph:

- a framework (jax, torch, tensorflow) is imported only under ``backends/``;
- ``backends/`` imports nothing of softprompt but itself; ``tasks/`` and
  ``data/`` import nothing of ``core/``, ``cli/`` or ``backends/``;
- ``core/`` never imports ``cli/``;
- the rooms of ``core/`` are ordered, lowest first (`CORE_ROOMS`): a module
  imports only modules of its own room or of lower rooms; ``core/demo.py``
  sits above them all and nothing in a room imports it;
- ``tasks/`` is imported only by the rooms that run tasks (`TASK_ROOMS`);
- each room imports, beside the standard library and softprompt, only the
  third-party packages `EXTERNAL` allows it (what ``core/__init__`` states);
- no import cycle anywhere in ``softprompt/``;
- every room's ``__init__`` says in its docstring what it owns and may import.

The checks are functions of plain data (`rule_violations`, `find_cycle`), and
the last tests feed them a bad graph to show that they fail where they must.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "softprompt"
ROOT = "softprompt"

#: The rooms of ``core/``, lowest first: each may import itself and the ones before it.
CORE_ROOMS = ("io", "text", "interop", "model", "inference", "training", "pretraining",
              "experiments", "serving")
#: Rooms that read tasks (`softprompt.tasks`); the ones below them take formatted text.
#: Pretraining reads its corpus files with the tasks' readers (`softprompt.tasks.readers`).
TASK_ROOMS = {"inference", "training", "pretraining", "experiments", "demo"}
FRAMEWORKS = {"jax", "jaxlib", "torch", "tensorflow", "tf_keras", "flax"}
#: Third-party packages each part may import (besides the standard library).
_CORE = {"keras", "keras_hub", "numpy"}
EXTERNAL = {
    "io": _CORE,
    "text": _CORE,
    "model": _CORE,
    "interop": _CORE | {"safetensors", "huggingface_hub", "filelock", "platformdirs"},
    "inference": _CORE,
    "training": _CORE | {"tensorboard", "matplotlib", "h5py"},
    "pretraining": _CORE | {"sentencepiece"},
    "experiments": _CORE | {"matplotlib"},
    "serving": _CORE | {"fastapi", "starlette", "pydantic", "uvicorn", "prometheus_client",
                        "watchfiles", "ray"},
    "demo": _CORE,
    "core": _CORE,
}
#: Modules longer than this say at the top why they are long.
LONG_MODULE = 400


# ---------------------------------------------------------------------- reading the graph


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path, name: str, known: set[str]) -> list[tuple[str, int]]:
    """``(imported module, line)`` for every import in the file, functions included."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            for alias in node.names:
                child = f"{target}.{alias.name}"
                out.append((child if child in known else target, node.lineno))
    return out


def import_graph() -> dict[str, list[tuple[str, int]]]:
    found = modules()
    known = set(found)
    return {name: imports_of(path, name, known) for name, path in found.items()}


# ---------------------------------------------------------------------- the rules


def part_of(module: str) -> tuple[str, str | None]:
    """``(top-level part, core room)``: e.g. ``("core", "model")``, ``("cli", None)``."""
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else ""
    room = None
    if top == "core":
        room = parts[2] if len(parts) > 2 else "core"
    return top, room


def rule_violations(graph: dict[str, list[tuple[str, int]]]) -> list[str]:
    """Every import in `graph` that breaks a rule, as ``module:line imports target (rule)``."""
    bad = []
    order = {room: i for i, room in enumerate(CORE_ROOMS)}
    for module, edges in graph.items():
        top, room = part_of(module)
        for target, line in edges:
            where = f"{module}:{line} imports {target}"
            first = target.split(".")[0]
            if first in FRAMEWORKS and top != "backends":
                bad.append(f"{where} (a framework outside backends/)")
            if first != ROOT:
                allowed = EXTERNAL.get(room) if top == "core" else None
                if (allowed is not None and first not in allowed
                        and first not in sys.stdlib_module_names and first not in FRAMEWORKS):
                    bad.append(f"{where} (core/{room} may import only {sorted(allowed)})")
                continue
            t_top, t_room = part_of(target)
            if top == "backends" and t_top not in ("backends", ""):
                bad.append(f"{where} (backends/ imports only itself)")
            if top in ("tasks", "data") and t_top in ("core", "cli", "backends"):
                bad.append(f"{where} ({top}/ is below core/, cli/ and backends/)")
            if top != "core":
                continue
            if t_top == "cli":
                bad.append(f"{where} (core/ never imports cli/)")
            if t_top == "tasks" and room not in TASK_ROOMS:
                bad.append(f"{where} (core/{room} takes formatted text, not tasks)")
            if t_top != "core" or room in ("demo", "core"):
                continue
            if t_room == "demo":
                bad.append(f"{where} (the demo sits above every room)")
            elif t_room in order and room in order and order[t_room] > order[room]:
                bad.append(f"{where} (core/{room} is below core/{t_room})")
    return bad


def find_cycle(graph: dict[str, list[tuple[str, int]]]) -> list[str] | None:
    """One import cycle among the modules of `graph` (``[a, b, ..., a]``), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for target, _ in graph.get(node, []):
            if target not in graph:
                continue
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in graph:
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


# ---------------------------------------------------------------------- the house


def test_every_import_follows_the_room_rules():
    assert rule_violations(import_graph()) == []


def test_no_import_cycle_anywhere():
    assert find_cycle(import_graph()) is None


def test_every_room_says_what_it_owns_and_may_import():
    for room in CORE_ROOMS:
        init = PACKAGE / "core" / room / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert doc and "may import" in doc, f"{init}: say what the room owns and may import"


def test_long_modules_say_why():
    for name, path in modules().items():
        lines = path.read_text().count("\n")
        if lines > LONG_MODULE:
            doc = ast.get_docstring(ast.parse(path.read_text())) or ""
            assert "Why this module is long:" in doc, (
                f"{name} has {lines} lines: split it or say why at its top")


def test_the_cli_starts_without_a_framework():
    """Every command module loads without keras: ``--backend`` must come first."""
    code = ("import sys, softprompt.cli.main as m\n"
            "for name in m.COMMANDS: m.LazyGroup._load(name)\n"
            "print(sorted({'keras', 'jax', 'torch', 'tensorflow'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=PACKAGE.parent)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------- the checks can fail


def test_the_rules_catch_imports_that_break_them():
    graph = {
        "softprompt.core.model.prompted_t5": [("softprompt.core.training.adafactor", 3),
                                              ("softprompt.core.inference.batched", 4),
                                              ("softprompt.tasks", 5),
                                              ("torch", 6), ("sentencepiece", 7)],
        "softprompt.core.io.atomic": [("softprompt.cli.common", 1)],
        "softprompt.core.inference.evaluate": [("softprompt.core.demo", 2),
                                               ("softprompt.tasks", 3)],
        "softprompt.backends.base": [("softprompt.core.model.prompted_t5", 9)],
        "softprompt.tasks.base": [("softprompt.core.text.tokens", 4)],
        "softprompt.cli.train": [("tensorflow", 8), ("softprompt.core.training.config", 9)],
    }
    bad = rule_violations(graph)
    expected = [
        "prompted_t5:3 imports softprompt.core.training.adafactor (core/model is below "
        "core/training)",
        "prompted_t5:4 imports softprompt.core.inference.batched (core/model is below "
        "core/inference)",
        "prompted_t5:5 imports softprompt.tasks (core/model takes formatted text",
        "prompted_t5:6 imports torch (a framework outside backends/)",
        "prompted_t5:7 imports sentencepiece (core/model may import only",
        "atomic:1 imports softprompt.cli.common (core/ never imports cli/)",
        "evaluate:2 imports softprompt.core.demo (the demo sits above every room)",
        "base:9 imports softprompt.core.model.prompted_t5 (backends/ imports only itself)",
        "tasks.base:4 imports softprompt.core.text.tokens (tasks/ is below",
        "train:8 imports tensorflow (a framework outside backends/)",
    ]
    for text in expected:
        assert sum(text in line for line in bad) == 1, (text, bad)
    assert len(bad) == len(expected), bad  # tasks in inference and cli -> core are fine


def test_find_cycle_finds_a_circle_and_only_a_circle():
    chain = {"a": [("b", 1)], "b": [("c", 1)], "c": [("keras", 1)]}
    assert find_cycle(chain) is None
    circle = {**chain, "c": [("a", 4)], "d": [("a", 1)]}
    cycle = find_cycle(circle)
    assert cycle[0] == cycle[-1] and set(cycle) == {"a", "b", "c"}


@pytest.mark.parametrize("source, expected", [
    ("from softprompt.core.text import tokens as tok", "softprompt.core.text.tokens"),
    ("from softprompt.core.text.batching import pad", "softprompt.core.text.batching"),
    ("def f():\n    from . import batching", "softprompt.core.text.batching"),
])
def test_imports_are_read_inside_functions_and_resolved_to_modules(tmp_path, source, expected):
    path = tmp_path / "tokens.py"
    path.write_text(source + "\n")
    known = {"softprompt.core.text.tokens", "softprompt.core.text.batching"}
    assert imports_of(path, "softprompt.core.text.tokens", known)[0][0] == expected

"""The project's shape: imports flow one way without cycles, and modules and functions stay small.

Dependency direction: `model` and `streaming` import nothing else of the project;
`simulator` imports only `streaming`'s event schemas and topic names; nothing imports
`ops`; inside `ops`, cli -> everything, benches -> research, training, evaluation, store
and options (the option helpers both declare their options with; never the CLI itself),
research (protocols, apart from throughput benches) -> training, evaluation and store,
training and evaluation -> streams (the Kafka source and the stop flag both read with) and
store; every part may import the two leaves `ops.errors` and `ops.metrics` (the one set of
metrics, which training's progressive validation and evaluation both score with). Every
import statement counts, also one inside a function or under TYPE_CHECKING: a hidden
import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("simulator", "streaming", "model", "ops")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60

# Which parts of the project each part may import (a part is a top-level package, or an
# ops sub-package); a part may always import itself.
SIMULATOR_MAY_IMPORT = {"streaming.events", "streaming.topics"}
# Leaves of ops that every part of it may import: the errors and the one set of metrics.
LEAVES = {"ops.errors", "ops.metrics"}
# What a research protocol drives: a learner, the evaluation, the registry.
PROTOCOL_PARTS = {"ops.training", "ops.evaluation", "ops.store", *LEAVES}
OPS_MAY_IMPORT = {
    "ops.cli": {"ops.benches", "ops.options", "ops.research", "ops.streams", *PROTOCOL_PARTS},
    "ops.benches": {"ops.options", "ops.research", "ops.streams", *PROTOCOL_PARTS},
    "ops.options": {"ops.errors"},
    "ops.research": PROTOCOL_PARTS,
    "ops.training": {"ops.streams", "ops.store", *LEAVES},
    "ops.evaluation": {"ops.streams", "ops.store", *LEAVES},
    "ops.streams": LEAVES,
    "ops.store": LEAVES,
    "ops.errors": set(),
    "ops.metrics": set(),
    "ops": set(),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


MODULES = project_modules()


def owning_module(dotted: str) -> str | None:
    """The longest prefix of a dotted name that is a project module."""
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        if (prefix := ".".join(parts[:n])) in MODULES:
            return prefix
    return None


def imports_of(name: str, path: Path) -> set[str]:
    """The project modules one module imports (`from pkg import mod` names the module mod)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            targets += [f"{base}.{alias.name}" for alias in node.names]
    found = {module for target in targets if (module := owning_module(target))}
    found.discard(name)
    return found


GRAPH = {name: imports_of(name, path) for name, path in MODULES.items()}


def part_of(name: str) -> str:
    top, _, rest = name.partition(".")
    if top != "ops" or not rest:
        return top
    return f"ops.{rest.partition('.')[0]}"


def allowed(importer: str, imported: str) -> bool:
    source, target = part_of(importer), part_of(imported)
    if source == target:
        return True
    if source == "simulator":
        return imported in SIMULATOR_MAY_IMPORT
    if source in ("model", "streaming"):
        return False
    if target.startswith("ops"):
        return target in OPS_MAY_IMPORT.get(source, set())
    return target in ("model", "streaming", "simulator")


def test_the_walk_sees_the_project() -> None:
    assert {"model.zoo", "ops.cli.main", "streaming.events", "simulator.replay"} <= set(GRAPH)
    assert "model.config" in GRAPH["model.zoo"] or "model.spec" in GRAPH["model.zoo"]
    assert "ops.store.database" in GRAPH["ops.store.snapshots"]


def test_imports_follow_the_dependency_direction() -> None:
    violations = sorted(
        f"{importer} imports {imported}"
        for importer, targets in GRAPH.items()
        for imported in targets
        if not allowed(importer, imported)
    )
    assert not violations, "\n".join(violations)


def test_the_rule_catches_what_it_forbids() -> None:
    assert not allowed("model.mmn", "streaming.events")
    assert not allowed("streaming.labels", "ops.errors")
    assert not allowed("simulator.replay", "streaming.minibatch")
    assert allowed("simulator.replay", "streaming.events")
    assert not allowed("ops.store.snapshots", "ops.training.learner")
    assert not allowed("ops.evaluation.holdout", "ops.training.learner")
    assert allowed("ops.evaluation.evaluator", "ops.streams.signals")
    assert not allowed("ops.evaluation.evaluator", "ops.training.kafka_io")
    assert not allowed("ops.streams.kafka_source", "ops.training.trainer")
    assert not allowed("ops.streams.kafka_source", "ops.store.snapshots")
    assert allowed("ops.benches.stream", "ops.research.stream_protocol")
    assert not allowed("ops.research.stream_protocol", "ops.benches.stream")
    assert not allowed("ops.research.stream_protocol", "ops.options.configs")
    assert allowed("ops.cli.train", "ops.training.trainer")
    assert allowed("ops.benches.train", "ops.options.configs")
    assert not allowed("ops.benches.train", "ops.cli.train")
    for cli_module in ("ops.cli.main", "ops.cli.bench", "ops.cli.outputs"):
        assert not allowed("ops.benches.join", cli_module)  # the CLI finds benches, not back
    assert not allowed("ops.options.configs", "ops.cli.main")
    assert allowed("ops.training.trainer", "model.zoo")
    assert allowed("ops.training.progressive", "ops.metrics")
    assert allowed("ops.evaluation.holdout", "ops.metrics")
    assert not allowed("ops.training.progressive", "ops.evaluation.metrics")
    assert not allowed("ops.training.lr_search", "ops.evaluation.report")
    assert not allowed("ops.metrics", "ops.evaluation.report")
    assert not allowed("ops.metrics", "ops.errors")


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of graph as a path that starts and ends at the same module, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle() -> None:
    assert find_cycle(GRAPH) is None


def function_lengths(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(), str(path))
    return [
        (f"{module_name(path)}.{node.name}:{node.lineno}", node.end_lineno - node.lineno + 1)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno
    ]


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_and_its_functions_are_small(name: str) -> None:
    path = MODULES[name]
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)} has {lines} lines"
    long = [(f, n) for f, n in function_lengths(path) if n > MAX_FUNCTION_LINES]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_every_error_class_of_ops_is_defined_in_ops_errors() -> None:
    elsewhere = sorted(
        f"{name}.{node.name}"
        for name, path in MODULES.items()
        if name.startswith("ops.") and name != "ops.errors"
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.ClassDef)
        and any(
            isinstance(base, ast.Name | ast.Attribute)
            and ast.unparse(base).rpartition(".")[2].endswith(("Error", "Exception"))
            for base in node.bases
        )
    )
    assert not elsewhere, elsewhere

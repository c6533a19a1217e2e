"""The tests mirror the code: `tests/<package>/test_<module>.py` for a module's unit tests,
`tests/e2e/` for the end-to-end ones (every `slow` test lives there), `tests/support/` for
the helpers they share.

A module without a test file of its own names in COVERED_BY the test file that covers it:
one that reaches it through its imports (a project import, a package's `__init__`, or a
module named in a string such as `mmn`'s command table), or an end-to-end test that runs it
as a command.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("simulator", "streaming", "model", "ops")
UNIT_ROOTS = ("simulator", "streaming", "model", "ops")

COVERED_BY: dict[str, str] = {
    "model.baselines.dnn": "tests/model/test_dnn.py",
    "model.baselines.esmm": "tests/model/test_esmm.py",
    "model.baselines.mixture": "tests/model/test_ple.py",
    "model.baselines.mmoe": "tests/model/test_mmoe.py",
    "model.baselines.mtfwfm": "tests/model/test_mtfwfm.py",
    "model.baselines.ple": "tests/model/test_ple.py",
    "model.baselines.routing": "tests/model/test_ple.py",
    "model.baselines.single_task": "tests/model/test_dnn.py",
    "model.baselines.star": "tests/model/test_star.py",
    "model.batch": "tests/model/test_dnn.py",
    "model.config": "tests/model/test_dnn.py",
    "model.errors": "tests/model/test_mmn.py",
    "model.masked": "tests/model/test_mmn.py",
    "model.scoring": "tests/model/test_snapshot.py",
    "model.spec": "tests/model/test_dnn.py",
    "model.zoo": "tests/model/test_dnn.py",
    "ops.benches.evaluate": "tests/ops/benches/test_bench_commands.py",
    "ops.benches.faust_floor": "tests/ops/benches/test_stream_bench.py",
    "ops.benches.join": "tests/e2e/test_bench_join.py",
    "ops.benches.model": "tests/ops/benches/test_bench_commands.py",
    "ops.benches.offline": "tests/ops/benches/test_stream_bench.py",
    "ops.benches.pipeline": "tests/e2e/test_bench_pipeline.py",
    "ops.benches.replay": "tests/ops/benches/test_bench_commands.py",
    "ops.benches.stream": "tests/ops/benches/test_stream_bench.py",
    "ops.benches.train": "tests/ops/benches/test_stream_bench.py",
    "ops.benches.train_parallel": "tests/ops/benches/test_bench_train_parallel.py",
    "ops.cli.__main__": "tests/e2e/test_demo.py",
    "ops.cli.bench": "tests/ops/cli/test_runs.py",
    "ops.options.bootstrap": "tests/ops/cli/test_runs.py",
    "ops.cli.broker": "tests/ops/cli/test_runs.py",
    "ops.cli.data": "tests/ops/cli/test_runs.py",
    "ops.cli.demo.bench": "tests/e2e/test_bench_pipeline.py",
    "ops.cli.demo.live_view": "tests/ops/cli/test_live_view.py",
    "ops.cli.demo.pipeline": "tests/e2e/test_demo.py",
    "ops.cli.demo.plan": "tests/e2e/test_demo.py",
    "ops.cli.demo.supervisor": "tests/ops/cli/test_live_view.py",
    "ops.options.device": "tests/model/test_device.py",
    "ops.cli.evaluate": "tests/e2e/test_evaluate_e2e.py",
    "ops.cli.join": "tests/ops/cli/test_commands_join.py",
    "ops.cli.join_telemetry": "tests/ops/cli/test_live_view.py",
    "ops.cli.main": "tests/ops/cli/test_runs.py",
    "ops.cli.train_options": "tests/ops/cli/test_bad_invocations.py",
    "ops.options.bench": "tests/ops/cli/test_cli_options.py",
    "ops.options.daemon": "tests/ops/cli/test_cli_options.py",
    "ops.cli.replay": "tests/ops/cli/test_commands_replay.py",
    "ops.cli.report": "tests/ops/evaluation/test_report.py",
    "ops.cli.train": "tests/e2e/test_trainer_e2e.py",
    "ops.cli.train_group": "tests/e2e/test_parallel_trainer_e2e.py",
    "ops.errors": "tests/ops/cli/test_outputs.py",
    "ops.evaluation.domains": "tests/ops/evaluation/test_report.py",
    "ops.evaluation.experiment": "tests/ops/evaluation/test_evaluate_startup.py",
    "ops.evaluation.export": "tests/ops/evaluation/test_report.py",
    "ops.evaluation.finality": "tests/ops/evaluation/test_report.py",
    "ops.evaluation.holdout": "tests/ops/evaluation/test_report.py",
    "ops.evaluation.monitoring": "tests/ops/evaluation/test_evaluate_startup.py",
    "ops.evaluation.report_labels": "tests/ops/evaluation/test_report_text.py",
    "ops.evaluation.report_plots": "tests/ops/evaluation/test_report.py",
    "ops.evaluation.svg": "tests/ops/evaluation/test_report.py",
    "ops.evaluation.table": "tests/ops/evaluation/test_offline.py",
    "ops.research.relative_improvement": "tests/ops/benches/test_stream_bench.py",
    "ops.research.stream_protocol": "tests/ops/benches/test_stream_bench.py",
    "ops.store.database": "tests/ops/store/test_leases.py",
    "ops.store.defaults": "tests/ops/store/test_leases.py",
    "ops.store.names": "tests/ops/store/test_leases.py",
    "ops.store.run_options": "tests/ops/store/test_leases.py",
    "ops.store.snapshot_chain": "tests/ops/store/test_deltas.py",
    "ops.store.snapshot_config": "tests/ops/store/test_leases.py",
    "ops.store.snapshot_files": "tests/ops/store/test_leases.py",
    "ops.streams.kafka_source": "tests/ops/cli/test_runs.py",
    "ops.streams.signals": "tests/ops/evaluation/test_report_status.py",
    "ops.training.delayed.aux": "tests/ops/training/test_delayed.py",
    "ops.training.delayed.base": "tests/ops/training/test_delayed.py",
    "ops.training.delayed.defer": "tests/ops/training/test_delayed.py",
    "ops.training.delayed.esdfm": "tests/ops/training/test_delayed.py",
    "ops.training.delayed.fnw": "tests/ops/training/test_learner.py",
    "ops.training.delayed.oracle": "tests/ops/training/test_delayed.py",
    "ops.training.delayed.vanilla": "tests/ops/training/test_delayed.py",
    "ops.training.delayed.wait": "tests/ops/training/test_delayed.py",
    "ops.training.kafka_io": "tests/ops/training/test_learner.py",
    "ops.training.learner_config": "tests/ops/training/test_learner.py",
    "ops.training.merge": "tests/ops/training/test_learner.py",
    "ops.training.parallel_trainer": "tests/e2e/test_parallel_trainer_e2e.py",
    "ops.training.rows": "tests/ops/training/test_learner.py",
    "ops.training.seams": "tests/ops/training/test_learner.py",
    "ops.training.telemetry": "tests/ops/training/test_learner.py",
    "ops.training.trainer_config": "tests/ops/training/test_learner.py",
    "simulator.columns": "tests/simulator/test_synth.py",
    "simulator.errors": "tests/simulator/test_replay.py",
    "simulator.records": "tests/simulator/test_replay.py",
    "streaming.errors": "tests/streaming/test_broker.py",
    "streaming.example": "tests/streaming/test_minibatch.py",
    "streaming.health": "tests/streaming/test_supervisor.py",
    "streaming.join_monitor": "tests/streaming/test_supervisor.py",
    "streaming.joiner_app": "tests/streaming/test_supervisor.py",
    "streaming.joiner_process": "tests/streaming/test_supervisor.py",
    "streaming.plausibility": "tests/streaming/test_supervisor.py",
    "streaming.processes": "tests/streaming/test_broker.py",
    "streaming.segments": "tests/streaming/test_partition_joiner_faults.py",
    "streaming.source": "tests/streaming/test_supervisor.py",
    "streaming.topics": "tests/streaming/test_broker.py",
}


def dotted(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_files() -> dict[str, Path]:
    """Every module and package of the project (migrations are data, not code)."""
    return {
        dotted(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in path.parts
    }


FILES = project_files()
MODULES = sorted(name for name, path in FILES.items() if path.name != "__init__.py")
TESTS = sorted((ROOT / "tests").rglob("test_*.py"))


def named(text: str) -> set[str]:
    """The project modules a file names: imports, and strings that are a module's name."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.add(node.value)
    found = set()
    for name in out:
        while name and name not in FILES:
            name = name.rpartition(".")[0]
        if name:
            found.add(name)
    return found


GRAPH = {name: named(path.read_text()) for name, path in FILES.items()}


def reached(test: Path) -> set[str]:
    """Every project module a test file reaches through its imports, transitively."""
    todo, seen = list(named(test.read_text())), set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(GRAPH[name])
            parent = name.rpartition(".")[0]  # importing a.b.c runs a.b's __init__ first
            if parent in FILES:
                todo.append(parent)
    return seen


def own_test(module: str) -> Path:
    path = FILES[module].relative_to(ROOT)
    return ROOT / "tests" / path.parent / f"test_{path.stem}.py"


@pytest.mark.parametrize("module", MODULES)
def test_every_module_has_its_test_file_or_names_the_test_that_covers_it(module: str) -> None:
    if own_test(module).exists():
        assert module not in COVERED_BY, f"{module} has its own test file: drop its COVERED_BY line"
        return
    assert module in COVERED_BY, f"{module}: no {own_test(module).relative_to(ROOT)}, no COVERED_BY"
    test = ROOT / COVERED_BY[module]
    assert test.exists(), f"{module}: {COVERED_BY[module]} does not exist"
    # The project-wide checks (docs, layout, this file) reach everything through `mmn`'s
    # command table and test none of it.
    assert test.parent != ROOT / "tests", f"{module}: {COVERED_BY[module]} is not a code test"
    end_to_end = test.parent.name == "e2e"
    assert end_to_end or module in reached(test), f"{COVERED_BY[module]} never reaches {module}"


def test_covered_by_names_only_modules_that_exist() -> None:
    assert sorted(set(COVERED_BY) - set(MODULES)) == []


def test_test_files_sit_in_a_folder_of_the_code_or_in_e2e() -> None:
    for test in TESTS:
        folder = test.parent.relative_to(ROOT / "tests")
        if folder.parts in ((), ("e2e",)):
            continue
        assert folder.parts[0] in UNIT_ROOTS and (ROOT / folder).is_dir(), test


def test_test_file_names_are_unique() -> None:
    """pytest imports test files by their name (rootdir-relative import mode)."""
    names = [test.name for test in TESTS]
    assert sorted({n for n in names if names.count(n) > 1}) == []


def test_slow_tests_are_end_to_end_tests() -> None:
    for test in TESTS:
        lines = [line.strip() for line in test.read_text().splitlines()]
        if any(
            line.startswith("@pytest.mark.slow")
            or (line.startswith("pytestmark") and "mark.slow" in line)
            for line in lines
        ):
            assert test.parent.name == "e2e", f"{test.relative_to(ROOT)} has slow tests"

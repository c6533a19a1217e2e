"""The demo run: a log, the components as supervised children, a live view, then the report.

In order: synthesise a log (or take the given one); migrate the registry once (the
trainers and the evaluator share it); start the embedded broker (`mmn broker`) and create
the topics the components share, with one partition count; start the joiner, one trainer
per arm, the A/B evaluator (shadow mode) and the replay at full speed, each an `mmn` child
logging to `<run>/logs/<name>.log`; show the live view until every one of them has
finished; then `mmn report show` prints the report and writes its HTML beside. A failing
component stops the others and fails the run with the tail of its log; Ctrl-C or SIGTERM
stops every child by PID.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from ops.cli.demo.live_view import (
    LiveView,
    Row,
    evaluator_line,
    join_line,
    replay_line,
    trainer_line,
)
from ops.cli.demo.plan import (
    DemoConfig,
    RunFolder,
    broker_args,
    evaluate_args,
    join_args,
    prune_args,
    replay_args,
    report_args,
    train_args,
)
from ops.cli.demo.supervisor import ComponentFailed, Supervisor
from ops.cli.outputs import MARKER, claim_output, output_owner
from ops.errors import ConfigError, OpsError
from ops.store.database import open_registry
from simulator.synth import generate, write
from streaming.broker import free_port, wait_for_port
from streaming.topics import TopicNames, create_topics


def prepare_folder(root: Path, *, command: str = "demo", force: bool = False) -> None:
    """Claim the run folder for `mmn command` (ops.cli.outputs): a previous run's is emptied
    first; another non-empty folder is refused unless `force`, and then nothing in it is
    deleted."""
    previous_run = output_owner(root) == command
    claim_output(root, command, force=force)
    if previous_run:
        for path in root.iterdir():
            if path.name == MARKER:
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


def synthesise(config: DemoConfig, folder: RunFolder) -> Path:
    """Write the synthetic log and its truth files into the run folder; the log's path."""
    write(generate(config.rows, seed=config.seed), folder.data)
    return folder.data / "CriteoSearchData"


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt inside the block, like Ctrl-C: the children get stopped."""
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def start_broker(supervisor: Supervisor, timeout_s: float = 30.0) -> str:
    """Start `mmn broker` on a free port; its bootstrap address once it accepts connections."""
    port = free_port()
    supervisor.start("broker", broker_args(port), daemon=True)
    deadline = time.monotonic() + timeout_s
    while not wait_for_port("127.0.0.1", port, 0.5):
        supervisor.check()
        if time.monotonic() > deadline:
            raise OpsError(f"the broker did not listen on 127.0.0.1:{port} within {timeout_s:.0f}s")
    return f"127.0.0.1:{port}"


def shared_topics(partitions: int) -> dict[str, int]:
    """The topics the components share, each with the one partition count they must agree on."""
    names = TopicNames()
    return {name: partitions for name in (*names.sources, names.examples, names.minibatches)}


def view_rows(config: DemoConfig) -> list[Row]:
    return [
        Row("replay", "replay", replay_line),
        Row("join", "joiner", join_line),
        *(Row(f"train-{arm}", f"train {arm}", trainer_line) for arm in config.arms),
        Row("evaluate", "evaluator", evaluator_line),
    ]


def pipeline_supervisor(folder: RunFolder) -> Supervisor:
    """The supervisor of a run's components, logging into the run folder."""
    # The children work in the run folder: what they write beside them (Faust's table
    # state) stays in the run, not in the user's folder. One thread of intra-op parallelism
    # each: they share the machine's cores, and torch's default (one thread per core) makes
    # every process slower when the cores are busy.
    return Supervisor(folder.logs, cwd=folder.root, env={"OMP_NUM_THREADS": "1"})


def start_pipeline(
    supervisor: Supervisor, config: DemoConfig, folder: RunFolder, data: Path
) -> str:
    """Start the broker, the shared topics, the joiner, a trainer per arm, the evaluator and
    the replay of `data`, as children of `supervisor`; the broker's bootstrap address."""
    bootstrap = start_broker(supervisor)
    create_topics(bootstrap, shared_topics(config.partitions))
    supervisor.start("join", join_args(config, bootstrap, folder))
    for arm in config.arms:
        supervisor.start(f"train-{arm}", train_args(config, arm, bootstrap, folder))
    supervisor.start("evaluate", evaluate_args(config, bootstrap, folder))
    supervisor.start("replay", replay_args(config, bootstrap, data))
    return bootstrap


def run_components(config: DemoConfig, folder: RunFolder, data: Path, out: TextIO) -> None:
    """Start every component under a supervisor, show the live view, wait for all to finish."""
    with pipeline_supervisor(folder) as supervisor:
        try:
            bootstrap = start_pipeline(supervisor, config, folder, data)
            print(f"broker at {bootstrap}; component logs in {folder.logs}/", file=out, flush=True)
            view = LiveView(supervisor, view_rows(config), stream=out)
            finite = [name for name, child in supervisor.children.items() if not child.daemon]
            supervisor.wait(finite, timeout_s=config.timeout_s, tick=view.tick)
            view.tick(force=True)
            report = supervisor.start("report", report_args(folder))
            supervisor.wait(["report"], timeout_s=config.timeout_s)
            for arm in config.arms:  # retention paused while the experiment ran
                supervisor.start(f"prune-{arm}", prune_args(arm, folder))
            supervisor.wait([f"prune-{arm}" for arm in config.arms], timeout_s=config.timeout_s)
        except ComponentFailed as exc:
            print(f"\n{exc.child.name} failed; the end of {exc.child.log_path}:", file=sys.stderr)
            print(exc.child.tail(), file=sys.stderr)
            raise
        except KeyboardInterrupt:
            running = sum(c.poll() is None for c in supervisor.children.values())
            print(f"\ninterrupted: stopping {running} running component(s) by PID", file=out)
            raise
        print("components:", file=out)
        for child in supervisor.children.values():
            if not child.daemon:
                print(f"  {child.name:<12} done in {child.wall_s:6.1f}s", file=out)
    # The report as `mmn report show` printed it (its log, without the command line on top).
    print("\n" + report.log_path.read_text().split("\n", 1)[1].rstrip(), file=out)


def run_demo(config: DemoConfig, out: TextIO | None = None) -> int:
    """The whole demo; exit code 0, or an OpsError (a failed component) / KeyboardInterrupt."""
    out = out or sys.stdout
    started = time.monotonic()
    if config.data is not None and not config.data.is_file():
        raise ConfigError(f"--data {config.data} is not a file")
    folder = RunFolder(config.out.resolve())  # absolute: the children work in it
    prepare_folder(folder.root, force=config.force)
    if config.data is None:
        data = synthesise(config, folder)
        print(f"synthetic log: {config.rows:,} rows, seed {config.seed}, in {data}", file=out)
    else:
        data = config.data.resolve()
        print(f"log: {data} (Criteo search format)", file=out)
    open_registry(folder.db)  # migrated once here: trainers starting together would race
    with sigterm_interrupts():
        run_components(config, folder, data, out)
    print(f"\nHTML report (plots): {folder.report_html}", file=out)
    print(f"demo finished in {time.monotonic() - started:.1f}s; run folder {folder.root}", file=out)
    return 0

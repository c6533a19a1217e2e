"""Options every daemon shares: `--threads` (torch intra-op threads) and `--metrics-port`."""

from __future__ import annotations

from typing import Annotated

import tyro

from ops.options.values import at_least, option_type, port_number

# Torch intra-op threads of the daemons that score or train small batches: on a 39-row
# MMN call one thread took 9 ms and two 63 ms under load (issue 20), and every extra
# thread competes with the pipeline's other processes for the same cores.
TORCH_THREADS = 1

# A daemon's field `threads: Threads = TORCH_THREADS` (applied by its run()).
Threads = Annotated[
    int,
    option_type("N", at_least(1)),
    tyro.conf.arg(
        help="torch intra-op threads (small batches gain nothing from more, and they take "
        "cores from the other processes)"
    ),
]

# A daemon's field `metrics_port: MetricsPort = None`.
MetricsPort = Annotated[
    int | None,
    option_type("PORT", port_number),
    tyro.conf.arg(help="serve Prometheus metrics on 127.0.0.1"),
]

"""Every scored example of an experiment as CSV, so that anyone can recompute every figure.

Header: experiment,arm,impression_id,user_id,conv_type,scenario,window,snapshot_version,
prediction,label. `window` is the start of the impression's event-time window (seconds);
`prediction` is written with 17 significant digits, so it reads back as the exact float
every figure of the report was computed from. Clicks an arm had no snapshot for are not
scored and not written.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from ops.errors import EvaluationError
from ops.store.experiments import predictions

HEADER = (
    "experiment",
    "arm",
    "impression_id",
    "user_id",
    "conv_type",
    "scenario",
    "window",
    "snapshot_version",
    "prediction",
    "label",
)


def export_predictions(Session: sessionmaker[Session], experiment: str, path: Path) -> int:
    """Write the scored rows of experiment to path (atomically); the number of rows."""
    with Session() as session:
        table = predictions(session, experiment)
    scored = np.flatnonzero(~np.isnan(table["prediction"]))
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(HEADER)
            for i in scored:
                writer.writerow(
                    (
                        experiment,
                        table["arm"][i],
                        table["impression_id"][i],
                        table["user_id"][i],
                        table["conv_type"][i],
                        table["scenario"][i],
                        int(table["window_start"][i]),
                        int(table["snapshot_version"][i]),
                        repr(float(table["prediction"][i])),
                        int(table["label"][i]),
                    )
                )
        os.replace(tmp, path)
    except OSError as exc:
        raise EvaluationError(f"cannot write predictions to {path}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return len(scored)

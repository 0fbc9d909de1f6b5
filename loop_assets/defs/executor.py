"""Which executor runs a run's steps: one process on a laptop, a process per step or workers past it.

The loop's steps run one after another (each writes the warehouse, in a pool of one), so a process per
step only pays a Python start and a model load per step (4-6 s each). `in_process` is the default; set
`EVAL_LOOP_EXECUTOR` to `multiprocess` (a process per step) or to a cluster executor where one is set up.
"""

from __future__ import annotations

import os

import dagster as dg

EXECUTORS: dict[str, dg.ExecutorDefinition] = {
    "in_process": dg.in_process_executor,
    "multiprocess": dg.multiprocess_executor,
}


def loop_executor(name: str | None = None) -> dg.ExecutorDefinition:
    """The executor named by `name` or `EVAL_LOOP_EXECUTOR` (default `in_process`)."""
    name = name or os.environ.get("EVAL_LOOP_EXECUTOR", "in_process")
    if name not in EXECUTORS:
        raise ValueError(f"EVAL_LOOP_EXECUTOR={name!r} is not an executor here; use one of {sorted(EXECUTORS)}")
    return EXECUTORS[name]

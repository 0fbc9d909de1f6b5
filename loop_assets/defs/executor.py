"""Which executor runs a run's steps: one process on a laptop, a process per step or workers past it.

The loop's steps run one after another (each writes the warehouse, in a pool of one), so a process per
step only pays a Python start and a model load per step (4-6 s each). `in_process` is the default; set
`EVAL_LOOP_EXECUTOR` to `multiprocess` (a process per step), `celery` (each step a task on a Celery
worker; the `cluster` extra, a Postgres instance and a DuckLake warehouse: README, "Running on a cluster")
or `k8s` (each step a Kubernetes job: dagster-k8s, on a Dagster deployed with its Helm chart).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import dagster as dg

CELERY_BROKER = "EVAL_LOOP_CELERY_BROKER"
"""The Celery broker URL, e.g. redis://redis.internal:6379/0 (default redis://127.0.0.1:6379/0)."""
CELERY_BACKEND = "EVAL_LOOP_CELERY_BACKEND"
"""Where workers put step results (default: the broker's Redis)."""
DEFAULT_BROKER = "redis://127.0.0.1:6379/0"


def celery() -> dg.ExecutorDefinition:
    """dagster-celery's executor, broker and result backend from the environment: imported only when
    chosen, so a laptop install does without Celery."""
    try:
        from dagster_celery import celery_executor
    except ImportError as exc:
        raise ValueError("EVAL_LOOP_EXECUTOR='celery' needs the cluster extra: pip install -e '.[cluster]'") from exc
    broker = os.environ.get(CELERY_BROKER, DEFAULT_BROKER)
    return celery_executor.configured(
        {
            "broker": {"env": CELERY_BROKER} if CELERY_BROKER in os.environ else broker,
            "backend": {"env": CELERY_BACKEND} if CELERY_BACKEND in os.environ else broker,
        },
        name="celery",
    )


def k8s() -> dg.ExecutorDefinition:
    """dagster-k8s' executor: each step a Kubernetes job in the run's image (its config from the Helm chart's
    run launcher). Imported only when chosen."""
    try:
        from dagster_k8s import k8s_job_executor
    except ImportError as exc:
        raise ValueError("EVAL_LOOP_EXECUTOR='k8s' needs dagster-k8s: pip install dagster-k8s==0.29.27") from exc
    return k8s_job_executor


EXECUTORS: dict[str, Callable[[], dg.ExecutorDefinition]] = {
    "in_process": lambda: dg.in_process_executor,
    "multiprocess": lambda: dg.multiprocess_executor,
    "celery": celery,
    "k8s": k8s,
}


def loop_executor(name: str | None = None) -> dg.ExecutorDefinition:
    """The executor named by `name` or `EVAL_LOOP_EXECUTOR` (default `in_process`)."""
    name = name or os.environ.get("EVAL_LOOP_EXECUTOR", "in_process")
    if name not in EXECUTORS:
        raise ValueError(f"EVAL_LOOP_EXECUTOR={name!r} is not an executor here; use one of {sorted(EXECUTORS)}")
    return EXECUTORS[name]()

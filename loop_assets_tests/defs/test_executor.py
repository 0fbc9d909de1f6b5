"""The executor is one setting: steps in the run's own process on a laptop, a process per step when asked."""

from __future__ import annotations

import dagster as dg
import pytest

from loop_assets.defs.executor import loop_executor


def test_a_laptop_runs_every_step_in_one_process_and_the_setting_switches_it(monkeypatch):
    monkeypatch.delenv("EVAL_LOOP_EXECUTOR", raising=False)
    assert loop_executor() is dg.in_process_executor
    monkeypatch.setenv("EVAL_LOOP_EXECUTOR", "multiprocess")
    assert loop_executor() is dg.multiprocess_executor


def test_an_unknown_executor_is_refused_with_the_names_that_work(monkeypatch):
    monkeypatch.setenv("EVAL_LOOP_EXECUTOR", "threads")
    with pytest.raises(ValueError, match=r"EVAL_LOOP_EXECUTOR='threads'.*in_process.*multiprocess"):
        loop_executor()

"""Pool slots held by runs whose process is gone: found, the run marked failed, the slot freed.

Every asset that writes DuckDB is in the `duckdb` pool of size 1. A run whose process is killed
(SIGKILL, out of memory, a closed laptop) never gives its slot back, and every later run waits for it
for ever. The daemon's run monitoring frees such slots for runs it launched, but `eval-loop
materialize` (and `make run`) has no daemon, so before it starts a run, and while its run waits for
the pool, it calls `release_dead_runs`:

- a run that has ended (success, failure, canceled) and still holds a slot gives it back;
- a run still marked in progress is dead when none of the processes its events were logged from is
  alive (a pid that now belongs to a process started after the run is someone else's). It is then
  marked failed, with the reason, and its slots are freed. Only a local instance (SQLite, or in
  memory) is judged this way: its runs ran on this machine. A run of a shared instance (Postgres)
  may run on another machine, where this one cannot look; the daemon's run monitoring handles those.

`holders` says who holds a pool's slots, for a run that waits to print.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import dagster as dg
import psutil

IN_PROGRESS = {dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING}
_PID_EVENTS = {
    dg.DagsterEventType.RUN_START,
    dg.DagsterEventType.ENGINE_EVENT,
    dg.DagsterEventType.STEP_WORKER_STARTED,
    dg.DagsterEventType.STEP_START,
}
_CLOCK_SLACK_SECONDS = 2.0


@dataclass(frozen=True)
class SlotHolder:
    pool: str
    run_id: str
    step_key: str | None
    status: str
    """The run's status, "gone" when the run is no longer in the instance."""
    pids: tuple[int, ...]
    alive: bool | None
    """Whether a process of the run is alive; None where this machine cannot tell (a shared instance)."""

    def describe(self) -> str:
        step = f"step {self.step_key} of " if self.step_key else ""
        pids = f", pid {', '.join(map(str, self.pids))}" if self.pids else ""
        state = {True: "alive", False: "dead", None: "on a shared instance"}[self.alive]
        return f"{step}run {self.run_id} ({self.status}{pids}, {state})"


def is_local(instance: dg.DagsterInstance) -> bool:
    """Whether the instance's runs run on this machine (SQLite or in-memory run storage)."""
    name = type(instance.run_storage).__name__
    return name.startswith(("Sqlite", "InMemory"))


def run_pids(instance: dg.DagsterInstance, run_id: str) -> set[int]:
    """The process ids the run's events were logged from (the run worker and any step processes)."""
    records = instance.get_records_for_run(run_id, of_type=_PID_EVENTS).records
    return {
        r.event_log_entry.dagster_event.pid
        for r in records
        if r.event_log_entry.dagster_event is not None and r.event_log_entry.dagster_event.pid is not None
    }


def process_alive(pid: int, started_at: float | None) -> bool:
    """Whether `pid` is a live process that may be the one a run started at `started_at` logged from."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        created = process.create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    # a process created after the run started cannot be the run's: its pid was reused
    return started_at is None or created <= started_at + _CLOCK_SLACK_SECONDS


def holders(instance: dg.DagsterInstance, pools: list[str] | None = None) -> list[SlotHolder]:
    """Every claimed slot of the pools (default: all), with its run's status and whether it is alive."""
    storage = instance.event_log_storage
    local = is_local(instance)
    found = []
    for pool in sorted(pools if pools is not None else storage.get_concurrency_keys()):
        for slot in storage.get_concurrency_info(pool).claimed_slots:
            record = next(iter(instance.get_run_records(dg.RunsFilter(run_ids=[slot.run_id]), limit=1)), None)
            if record is None:
                found.append(SlotHolder(pool, slot.run_id, slot.step_key, "gone", (), False))
                continue
            status = record.dagster_run.status
            pids = tuple(sorted(run_pids(instance, slot.run_id)))
            if status not in IN_PROGRESS:
                alive: bool | None = False
            elif not local:
                alive = None
            else:
                started = record.start_time or (
                    record.create_timestamp.timestamp() if record.create_timestamp else None
                )
                alive = any(process_alive(pid, started) for pid in pids) if pids else _young(record)
            found.append(SlotHolder(pool, slot.run_id, slot.step_key, status.value, pids, alive))
    return found


def _young(record: dg.RunRecord) -> bool:
    """A run in progress with no event that names a process yet: alive while it is starting (a minute)."""
    created = record.create_timestamp.timestamp() if record.create_timestamp else 0.0
    return time.time() - created < 60


def release_dead_runs(instance: dg.DagsterInstance, pools: list[str] | None = None) -> list[SlotHolder]:
    """Free the slots of runs that ended or whose processes are all gone (marking those failed); returns
    the holders released."""
    released = []
    for holder in holders(instance, pools):
        if holder.alive is not False:
            continue
        if holder.run_id in {h.run_id for h in released}:
            continue
        record = next(iter(instance.get_run_records(dg.RunsFilter(run_ids=[holder.run_id]), limit=1)), None)
        if record is not None and record.dagster_run.status in IN_PROGRESS:
            pids = ", ".join(map(str, holder.pids)) or "none logged"
            instance.report_run_failed(
                record.dagster_run,
                f"the run's process is gone (pid {pids}: killed, or its machine restarted) while it held a slot "
                f"of pool {holder.pool}; marked failed and its slots freed so later runs do not wait for it",
            )
        instance.event_log_storage.free_concurrency_slots_for_run(holder.run_id)
        released.append(holder)
    return released

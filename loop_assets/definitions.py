"""Everything Dagster loads: the loop's assets, checks, job, sensor, schedule and resources."""

import dagster as dg

from loop_assets.defs.assets.capture import raw_traces, scored_traces
from loop_assets.defs.assets.coverage import suite_coverage
from loop_assets.defs.assets.dedup import failure_clusters
from loop_assets.defs.assets.eval_run import eval_run
from loop_assets.defs.assets.grade import graded_candidates
from loop_assets.defs.assets.promote import eval_suite
from loop_assets.defs.automation import coverage_automation
from loop_assets.defs.executor import loop_executor
from loop_assets.defs.jobs import loop_job
from loop_assets.defs.resources import default_resources
from loop_assets.defs.schedules import finalise_yesterday
from loop_assets.defs.sensors import new_trace_files

# the daily assets of the loop, whose keys are tables.LOOP_TABLES (a test holds them together)
daily_assets = [raw_traces, scored_traces, failure_clusters, graded_candidates, eval_suite]

defs = dg.Definitions(
    assets=[*daily_assets, suite_coverage, eval_run],
    jobs=[loop_job],
    sensors=[new_trace_files, coverage_automation],
    schedules=[finalise_yesterday],
    resources=default_resources(),
    executor=loop_executor(),
)

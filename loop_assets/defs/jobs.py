"""The loop as one partitioned job: what the sensor and the schedule launch."""

import dagster as dg

LOOP_GROUPS = ("capture", "dedup", "grade", "promote")

loop_job = dg.define_asset_job(
    "eval_loop",
    selection=dg.AssetSelection.groups(*LOOP_GROUPS),
    description="Every step of the loop for a day (or a range of days, in order): capture, dedup, grade, promote.",
)

"""The loop as one partitioned job: what the sensor and the schedule launch."""

import dagster as dg

from loop_assets.defs.partitions import daily_partitions

LOOP_GROUPS = ("capture", "dedup", "grade", "promote")

loop_job = dg.define_asset_job(
    "eval_loop",
    selection=dg.AssetSelection.groups(*LOOP_GROUPS),
    partitions_def=daily_partitions,
    description="Every step of the loop for a day (or a range of days, in order): capture, dedup, grade, promote.",
)

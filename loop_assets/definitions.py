"""Everything Dagster loads: the loop's assets, their checks and resources."""

from __future__ import annotations

import dagster as dg

from loop_assets.defs.assets.capture import raw_traces, scored_traces
from loop_assets.defs.assets.dedup import failure_clusters
from loop_assets.defs.assets.grading import graded_candidates
from loop_assets.defs.assets.promotion import eval_suite
from loop_assets.defs.resources import default_resources

loop_assets = [raw_traces, scored_traces, failure_clusters, graded_candidates, eval_suite]

defs = dg.Definitions(assets=loop_assets, resources=default_resources())

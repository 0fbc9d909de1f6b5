"""The Dagster layer of eval-loop: assets, checks, resources, sensors, schedules and the job."""

import warnings

import dagster as dg

# Every asset of the loop takes a range of days in one run (BackfillPolicy.single_run, what
# `dagster asset materialize --partition-range` needs); that parameter is still marked beta, which
# printed one warning per asset per process (156 lines in one `dagster dev` session). Said once, here.
warnings.filterwarnings("ignore", message=r"Parameter `backfill_policy`", category=dg.BetaWarning)

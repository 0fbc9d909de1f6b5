"""Shortly after midnight UTC, finalise yesterday through to the suite (quiet days included)."""

from datetime import UTC, timedelta

import dagster as dg

from loop_assets.defs.jobs import loop_job
from loop_assets.defs.sensors import days_tag


@dg.schedule(
    job=loop_job,
    cron_schedule="15 0 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="00:15 UTC: materialise yesterday's partition of every asset through to the suite, so every "
    "day gets its partition and its checks even without new files, and files of the day's last minutes count.",
)
def finalise_yesterday(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    yesterday = (context.scheduled_execution_time.astimezone(UTC) - timedelta(days=1)).date()
    return dg.RunRequest(
        run_key=f"finalise-{yesterday}",
        partition_key=str(yesterday),
        tags={"eval_loop/trigger": "finalise_yesterday", **days_tag(yesterday, yesterday)},
    )

"""Derived assets refresh by themselves after the suite changes: the automation condition sensor."""

import os

import dagster as dg

AUTOMATION_INTERVAL_SECONDS = int(os.environ.get("EVAL_LOOP_AUTOMATION_INTERVAL", "30"))

# eager() waits while any upstream partition is missing: with day partitions, today's (and every quiet day
# before a run) always is, so suite_coverage was never requested. It reads every day that exists instead.
after_any_suite_change = dg.AutomationCondition.eager().without(~dg.AutomationCondition.any_deps_missing())

coverage_automation = dg.AutomationConditionSensorDefinition(
    "coverage_automation",
    target=dg.AssetSelection.groups("report"),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=AUTOMATION_INTERVAL_SECONDS,
    description="Refreshes suite_coverage after every change of eval_suite (its automation condition).",
)

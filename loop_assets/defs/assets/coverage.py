"""REPORT: suite coverage against traffic, refreshed whenever the suite changes."""

import base64

import dagster as dg
import polars as pl

from loop_assets.defs.automation import after_any_suite_change
from loop_assets.defs.metadata import markdown_preview
from loop_assets.defs.partitions import DUCKDB_POOL
from loop_assets.defs.resources import Warehouse
from loop_assets.report.coverage import coverage_by_day, coverage_png


@dg.asset(
    deps=["eval_suite"],
    description="Traffic, failures, promotions and suite size per day, as a table and a chart: the suite should "
    "grow fastest on the days production is messiest. Refreshed by automation after every eval_suite change.",
    kinds={"duckdb", "polars"},
    group_name="report",
    pool=DUCKDB_POOL,
    automation_condition=after_any_suite_change,
)
def suite_coverage(warehouse: Warehouse) -> dg.MaterializeResult:
    with warehouse.get_connection() as con:
        frame = coverage_by_day(con)
    if frame.height == 0:
        return dg.MaterializeResult(metadata={"days": 0, "chart": dg.MetadataValue.md("_no traffic yet_")})
    png = base64.b64encode(coverage_png(frame)).decode()
    busiest = frame.sort("failures", descending=True).row(0, named=True)
    return dg.MaterializeResult(
        metadata={
            "days": frame.height,
            "suite_size": int(frame["suite_size"][-1]),
            "traces": int(frame["traces"].sum()),
            "failures": int(frame["failures"].sum()),
            "promotions_on_busiest_failure_day": int(busiest["promoted"]),
            "chart": dg.MetadataValue.md(f"![coverage](data:image/png;base64,{png})"),
            "by_day": markdown_preview(frame.with_columns(pl.col("day").cast(pl.String)), limit=400),
        }
    )

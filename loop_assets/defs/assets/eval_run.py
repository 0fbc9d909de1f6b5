"""EVAL RUN: grade a model on the suite as of a day, on demand (launchpad config) or from the CLI."""

from datetime import date

import dagster as dg
import polars as pl
from pydantic import Field

from loop_assets.defs.metadata import markdown_preview, table_metadata
from loop_assets.defs.partitions import DUCKDB_POOL
from loop_assets.defs.resources import LlmEndpoints, LoopSettings, Warehouse
from loop_assets.evaluate.eval_run import EmptySuite, NoModelToGrade, evaluate_suite, store_eval_run


class EvalRunConfig(dg.Config):
    model: str = Field(description="Model to grade: sent to the model endpoint, or the name of the recorded outputs")
    as_of: str | None = Field(default=None, description="Suite version: cases promoted up to this day (YYYY-MM-DD)")
    outputs: str | None = Field(
        default=None, description="JSONL of recorded answers (case_id, output, ...) instead of calling the endpoint"
    )
    use_judge: bool = Field(default=True, description="Grade rubric checks with the configured judge")


@dg.asset(
    deps=["eval_suite"],
    description="One row per (suite version, model, run) and scope (overall, per app, per cluster): pass rate and "
    "weighted pass rate of a model on the suite as of a day, graded by each case's rule. Per-case verdicts are in "
    "eval_run_results. Launched on demand with run config (model, as_of, outputs).",
    kinds={"duckdb", "polars"},
    group_name="evaluate",
    metadata=table_metadata("eval_runs"),
    pool=DUCKDB_POOL,
)
def eval_run(
    context: dg.AssetExecutionContext,
    config: EvalRunConfig,
    settings: LoopSettings,
    warehouse: Warehouse,
    endpoints: LlmEndpoints,
) -> dg.MaterializeResult:
    as_of = date.fromisoformat(config.as_of) if config.as_of else None
    try:
        loop_config = endpoints.applied(settings.config())
        result = evaluate_suite(
            warehouse.get_connection, loop_config, config.model, context.run_id, as_of, config.outputs, config.use_judge
        )
        with warehouse.get_connection() as con:
            store_eval_run(con, result)
    except (NoModelToGrade, EmptySuite) as exc:
        raise dg.Failure(description=str(exc)) from None
    version = result.summary["suite_version"][0]
    overall = result.overall()
    scoped = result.summary.filter(pl.col("scope") != "overall")
    return dg.MaterializeResult(
        metadata={
            "suite_version": version,
            "model": config.model,
            "cases": overall["cases"],
            "passed": overall["passed"],
            "failed": overall["failed"],
            "unknown": overall["unknown"],
            "missing": overall["missing"],
            "pass_rate": overall["pass_rate"],
            "weighted_pass_rate": overall["weighted_pass_rate"],
            "by_scope": markdown_preview(
                scoped.select("scope", "scope_key", "cases", "passed", "failed", "pass_rate", "weighted_pass_rate"),
                limit=100,
            ),
            "bad_output_lines": markdown_preview(result.bad_output_lines),
        }
    )

"""What the warehouse holds, for a person: traffic, failures, quarantine and the suite."""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl

from loop_assets.config import LoopConfig
from loop_assets.report.suite_quality import SHOWN, quality_by_app, suite_quality
from loop_assets.warehouse import ensure_tables


def loop_summary(con: duckdb.DuckDBPyConnection) -> dict[str, pl.DataFrame]:
    ensure_tables(con)
    sql = {
        "traffic by day": """
            SELECT r.day, count(*) AS traces, count(*) FILTER (WHERE s.is_failure) AS failures,
                   (SELECT count(*) FROM quarantined_records q WHERE q.partition_day = r.day) AS quarantined,
                   (SELECT count(*) FROM eval_suite e WHERE e.day = r.day) AS promoted
            FROM raw_traces r LEFT JOIN scored_traces s USING (trace_id, day) GROUP BY r.day ORDER BY r.day""",
        "failures by signal": """
            SELECT sig.scorer AS signal, count(*) AS failures
            FROM scored_traces, unnest(failure_signals) AS t(sig) GROUP BY ALL ORDER BY failures DESC""",
        "quarantined by reason": """
            SELECT reason_code, count(*) AS records FROM quarantined_records GROUP BY ALL ORDER BY records DESC""",
        "suite by app": """
            SELECT app, count(*) AS cases, round(sum(weight), 3) AS total_weight
            FROM eval_suite WHERE status = 'active' GROUP BY ALL ORDER BY app""",
    }
    tables = {title: con.execute(q).pl() for title, q in sql.items()}
    quality = suite_quality(con)
    tables["suite quality by app (coverage = inputs with a case within the threshold, of those not skipped)"] = (
        quality_by_app(quality).select(
            "app", "failing_traces", "failing_inputs", "promoted", "duplicates", "skipped", "uncovered",
            "coverage", "dedup_threshold", "suite_size",
        )
    )  # fmt: skip
    tables["suite quality by app and day (duplicates: similarity to their case)"] = quality.select(SHOWN)
    return tables


FAMILIES_SHOWN = 10
"""`stats` shows the largest failure families; `stats --cases` lists every case."""


def suite_stats(con: duckdb.DuckDBPyConnection, families: int = FAMILIES_SHOWN) -> dict[str, pl.DataFrame]:
    """The active suite summarised per app, per failure signal and per failure family (day/cluster_id):
    cases, weights and traces covered. A case with several signals counts once under each of them."""
    ensure_tables(con)
    sql = {
        "suite by app": """
            SELECT app, count(*) AS cases, round(sum(weight), 3) AS total_weight, round(avg(weight), 3) AS mean_weight,
                   count(DISTINCT CASE WHEN cluster_id >= 0 THEN day || '/' || cluster_id END) AS families,
                   count(*) FILTER (WHERE cluster_id < 0) AS unclustered, sum(cluster_size)::BIGINT AS traces_covered,
                   min(day) AS first_day, max(day) AS last_day
            FROM eval_suite WHERE status = 'active' GROUP BY ALL ORDER BY app""",
        "suite by failure signal (a case with several signals counts under each)": """
            SELECT sig.scorer AS signal, count(*) AS cases, round(sum(weight), 3) AS total_weight,
                   round(avg(weight), 3) AS mean_weight, count(DISTINCT app) AS apps
            FROM eval_suite, unnest(failure_signals) AS t(sig) WHERE status = 'active'
            GROUP BY ALL ORDER BY cases DESC, signal""",
        f"largest failure families (day/cluster; the {families} with most traces)": f"""
            SELECT day || '/' || cluster_id AS family, string_agg(DISTINCT app, ', ' ORDER BY app) AS apps,
                   count(*) AS cases, sum(cluster_size)::BIGINT AS traces, round(sum(weight), 3) AS total_weight,
                   arg_max(label, weight) AS heaviest_case
            FROM eval_suite WHERE status = 'active' AND cluster_id >= 0
            GROUP BY day, cluster_id ORDER BY traces DESC, cases DESC, family LIMIT {int(families)}""",
    }
    tables = {title: con.execute(q).pl() for title, q in sql.items()}
    total = con.execute("""
        SELECT count(*) AS cases, round(coalesce(sum(weight), 0), 3) AS total_weight, count(DISTINCT app) AS apps,
               count(DISTINCT CASE WHEN cluster_id >= 0 THEN day || '/' || cluster_id END) AS families
        FROM eval_suite WHERE status = 'active'""").pl()
    return {"suite": total, **tables}


def suite_cases(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every active case, one line each (`eval-loop stats --cases`)."""
    ensure_tables(con)
    return con.execute("""
        SELECT day, app, cluster_id, cluster_size, round(weight, 3) AS weight, case_id, label
        FROM eval_suite WHERE status = 'active' ORDER BY day, app, cluster_id, case_id""").pl()


def render(tables: dict[str, pl.DataFrame], rows: int = 200) -> str:
    """Titled tables as text; `rows` per table at most (-1: all)."""
    with pl.Config(
        tbl_rows=rows,
        tbl_cols=20,
        fmt_str_lengths=90,
        tbl_width_chars=220,
        tbl_hide_dataframe_shape=True,
        tbl_hide_column_data_types=True,
        tbl_hide_dtype_separator=True,
    ):
        return "\n\n".join(f"{title}\n{frame}" for title, frame in tables.items())


# --------------------------------------------------------------------------- apps against the configuration


def _traffic_by_app(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """app, traces, failures, invalid_ratings (ratings outside the app's scale) over every day."""
    return con.execute("""
        SELECT r.app, count(*) AS traces, count(*) FILTER (WHERE s.is_failure) AS failures,
               count(*) FILTER (WHERE len(list_filter(s.failure_signals, x -> x.scorer = 'invalid_feedback')) > 0)
                   AS invalid_ratings
        FROM raw_traces r LEFT JOIN scored_traces s USING (trace_id, day)
        WHERE r.app IS NOT NULL GROUP BY r.app ORDER BY r.app""").pl()


def cases_without_a_judge(con: duckdb.DuckDBPyConnection, apps: list[str] | None = None) -> pl.DataFrame:
    """Per app: how many active cases an eval run can fail without a judge, replaying the known bad answer.

    Each case's grading rule is applied, with no judge, to the answer that made it a case (its trace's
    output, finish reason, latency and error). `caught` cases fail on a check that needs no judge;
    `judge_only` cases stay unknown on their rubric check alone (only a judge can grade them);
    `uncaught` ones pass or stay unknown on something else.
    """
    from loop_assets.evaluate.answer_checks import Output, grade_output

    ensure_tables(con)
    where = "e.status = 'active'" + (" AND e.app IN (SELECT unnest(?::VARCHAR[]))" if apps is not None else "")
    cases = con.execute(
        f"""SELECT e.app, e.grading, r.output_text, r.finish_reason, r.latency_ms, r.error
            FROM eval_suite e LEFT JOIN raw_traces r ON r.trace_id = e.trace_id AND r.day = e.raw_partition
            WHERE {where}""",
        [apps] if apps is not None else [],
    ).pl()
    rows = []
    for app, grading, text, finish, latency, error in cases.iter_rows():
        verdict = grade_output(grading, Output(text, finish, latency, error))
        rubric_open = any(name.split("#")[0] == "rubric" for name in verdict.unknown_checks)
        kind = "caught" if verdict.passed is False else ("judge_only" if rubric_open else "uncaught")
        rows.append({"app": app, "kind": kind})
    schema = {"app": pl.String, "cases": pl.Int64, "caught": pl.Int64, "judge_only": pl.Int64, "uncaught": pl.Int64}
    if not rows:
        return pl.DataFrame(schema=schema)
    frame = pl.DataFrame(rows, schema={"app": pl.String, "kind": pl.String})
    return (
        frame.group_by("app")
        .agg(
            pl.len().cast(pl.Int64).alias("cases"),
            *[(pl.col("kind") == k).sum().cast(pl.Int64).alias(k) for k in ("caught", "judge_only", "uncaught")],
        )
        .sort("app")
        .select(list(schema))
    )


def apps_report(con: duckdb.DuckDBPyConnection, config: LoopConfig) -> tuple[pl.DataFrame, list[str]]:
    """One row per app seen in traffic or named in the configuration, and the warnings about them.

    Columns: app, settings (`configured`, `defaults`: seen but not named under apps:, `never seen`),
    traces, failures, invalid_ratings, cases, caught (an eval run fails the known bad answer without a
    judge), judge_only (only a judge can grade it), uncaught.
    """
    ensure_tables(con)
    traffic = _traffic_by_app(con)
    report = config.app_report(dict(traffic.select("app", "traces").iter_rows()))
    cases = cases_without_a_judge(con)
    names = sorted(set(traffic["app"].to_list()) | set(config.apps))
    frame = (
        pl.DataFrame({"app": names}, schema={"app": pl.String})
        .join(traffic, on="app", how="left")
        .join(cases, on="app", how="left")
        .with_columns(
            pl.col(c).fill_null(0)
            for c in ("traces", "failures", "invalid_ratings", "cases", "caught", "judge_only", "uncaught")
        )
        .with_columns(
            settings=pl.when(pl.col("app").is_in(report.unseen))
            .then(pl.lit("never seen"))
            .when(pl.col("app").is_in(report.on_defaults))
            .then(pl.lit("defaults"))
            .otherwise(pl.lit("configured"))
        )
        .select("app", "settings", "traces", "failures", "invalid_ratings", "cases", "caught", "judge_only", "uncaught")
    )
    warnings = report.warnings(config)
    for row in frame.filter(pl.col("invalid_ratings") > 0).iter_rows(named=True):
        low, high = config.app(row["app"]).feedback.rating_scale
        warnings.append(
            f"{row['app']}: {row['invalid_ratings']:,} trace(s) with a rating outside its rating_scale "
            f"{low:g}-{high:g} (flagged invalid_feedback, not scored): declare the scale the app logs in "
            f"apps.{row['app']}.feedback.rating_scale"
        )
    if config.judge is None:
        for row in frame.filter(pl.col("judge_only") > 0).iter_rows(named=True):
            on = " (it runs on the defaults)" if row["settings"] == "defaults" else ""
            warnings.append(
                f"{row['app']}: {row['judge_only']:,} of {row['cases']:,} case(s) can only be graded by a judge, and "
                f"none is configured{on}: an eval run leaves them unknown; configure judge: (eval_loop.yaml)"
            )
    return frame, warnings


def _per_day(counts: pl.DataFrame) -> dict[date, dict[str, int]]:
    """`counts` (rows counted by "day" and "app", in "len") as day -> {app: count}, apps sorted (a null app
    first, as polars sorts)."""
    by_day: dict[date, dict[str, int]] = {}
    for day, app, n in counts.select("day", "app", "len").sort("day", "app").iter_rows():
        by_day.setdefault(day, {})[app] = n
    return by_day


def scored_apps_metadata(
    con: duckdb.DuckDBPyConnection, config: LoopConfig, scored: pl.DataFrame, days: list[date]
) -> tuple[dict[date, dict[str, object]], list[str]]:
    """Each day's metadata of scored_traces about apps against the configuration, and the warnings to log
    (over all the days).

    `apps_on_defaults` (apps of the day not named under apps:, with their traces),
    `apps_never_seen` (named but in no trace of any day), `app_name_typos` (configured name -> the seen
    app it probably means), `invalid_ratings` (traces of the day with a rating outside the app's
    scale, per app) and, without a judge, `judge_only_cases` (per app on defaults: suite cases only a
    judge can grade). The warehouse is asked once, whatever the number of days.
    """
    named = scored.filter(pl.col("app").is_not_null())
    seen = dict(con.execute("SELECT app, count(*) FROM raw_traces WHERE app IS NOT NULL GROUP BY app").fetchall())
    report = config.app_report({**seen, **dict(named.group_by("app").len().iter_rows())})
    flagged = scored.filter(
        pl.col("failure_signals").list.eval(pl.element().struct.field("scorer") == "invalid_feedback").list.any()
    )
    defaults = sorted(set(named["app"]) - set(config.apps))
    judge_only: dict[str, int] = {}
    if config.judge is None and defaults:
        judge_only = dict(cases_without_a_judge(con, defaults).select("app", "judge_only").iter_rows())
    # each frame is grouped once by day and app; the days and the warnings below read the counts
    named_by_day = _per_day(named.group_by("day", "app").len())
    flagged_counts = flagged.group_by("day", "app").len()
    flagged_by_day = _per_day(flagged_counts)
    by_day: dict[date, dict[str, object]] = {}
    for day in days:
        day_counts = named_by_day.get(day, {})
        on_defaults = {a: n for a, n in day_counts.items() if a not in config.apps}
        invalid = flagged_by_day.get(day, {})
        by_day[day] = {
            "apps_on_defaults": on_defaults,
            "apps_never_seen": report.unseen,
            "app_name_typos": report.typos,
            "invalid_ratings": sum(invalid.values()),
            "invalid_ratings_by_app": {str(k): v for k, v in invalid.items()},
        }
        if config.judge is None and on_defaults:
            by_day[day]["judge_only_cases"] = {a: judge_only[a] for a in on_defaults if a in judge_only}
    warnings = report.warnings(config)
    for app, count in flagged_counts.group_by("app").agg(pl.col("len").sum()).sort("app").iter_rows():
        low, high = config.app(app).feedback.rating_scale
        warnings.append(
            f"{app}: {count:,} trace(s) with a rating outside its rating_scale {low:g}-{high:g} (flagged "
            f"invalid_feedback, not scored): declare the scale the app logs in apps.{app}.feedback.rating_scale"
        )
    return by_day, warnings

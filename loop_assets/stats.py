"""What the warehouse holds, for a person: traffic, failures, quarantine and the suite."""

from __future__ import annotations

import duckdb
import polars as pl

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
    return {title: con.execute(q).pl() for title, q in sql.items()}


def suite_stats(con: duckdb.DuckDBPyConnection) -> dict[str, pl.DataFrame]:
    ensure_tables(con)
    sql = {
        "cases by app": """
            SELECT app, count(*) AS cases FROM eval_suite WHERE status = 'active' GROUP BY ALL ORDER BY app""",
        "cases by signal": """
            SELECT sig.scorer AS signal, count(*) AS cases
            FROM eval_suite, unnest(failure_signals) AS t(sig) WHERE status = 'active'
            GROUP BY ALL ORDER BY cases DESC""",
        "cases by cluster": """
            SELECT day, app, cluster_id, cluster_size, case_id, label FROM eval_suite WHERE status = 'active'
            ORDER BY day, app, cluster_id""",
    }
    return {title: con.execute(q).pl() for title, q in sql.items()}


def render(tables: dict[str, pl.DataFrame]) -> str:
    with pl.Config(tbl_rows=200, tbl_cols=20, fmt_str_lengths=90, tbl_width_chars=220, tbl_hide_dataframe_shape=True):
        return "\n\n".join(f"{title}\n{frame}" for title, frame in tables.items())

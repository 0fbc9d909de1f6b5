"""Coverage over time: traffic and failures per day against promotions and suite size.

The point of the loop in one picture: the suite grows fastest on the days production is messiest.
"""

from __future__ import annotations

import io

import duckdb
import polars as pl

from loop_assets.warehouse import ensure_tables


def coverage_by_day(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Per day: traces, failures, failure rate, promoted cases and the suite size as of that day."""
    ensure_tables(con)
    return con.execute(
        """
        WITH traffic AS (
            SELECT day, count(*) AS traces, count(*) FILTER (WHERE is_failure) AS failures
            FROM scored_traces GROUP BY day
        ),
        promoted AS (SELECT day, count(*) AS promoted FROM eval_suite WHERE status = 'active' GROUP BY day),
        days AS (SELECT day FROM traffic UNION SELECT day FROM promoted)
        SELECT d.day,
               coalesce(t.traces, 0)::BIGINT AS traces,
               coalesce(t.failures, 0)::BIGINT AS failures,
               round(coalesce(t.failures, 0) / greatest(coalesce(t.traces, 0), 1), 4) AS failure_rate,
               coalesce(p.promoted, 0)::BIGINT AS promoted,
               (sum(coalesce(p.promoted, 0)) OVER (ORDER BY d.day))::BIGINT AS suite_size
        FROM days d LEFT JOIN traffic t USING (day) LEFT JOIN promoted p USING (day)
        ORDER BY d.day
        """
    ).pl()


def coverage_png(frame: pl.DataFrame) -> bytes:
    """Two panels sharing the day axis: traffic and failures above, promotions and suite size below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    days = frame["day"].to_list()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True, constrained_layout=True)
    top.bar(days, frame["traces"].to_list(), color="#c9d6e8", label="traces")
    top.bar(days, frame["failures"].to_list(), color="#d9534f", label="failures")
    top.set_ylabel("traces per day")
    top.legend(loc="upper left", frameon=False)
    top.set_title("Production traffic and failures vs. eval suite growth")
    bottom.bar(days, frame["promoted"].to_list(), color="#5cb85c", label="cases promoted that day")
    bottom.set_ylabel("promoted")
    suite = bottom.twinx()
    suite.plot(days, frame["suite_size"].to_list(), color="#333333", marker="o", label="suite size")
    suite.set_ylabel("suite size")
    handles = bottom.get_legend_handles_labels()[0] + suite.get_legend_handles_labels()[0]
    bottom.legend(handles, [h.get_label() for h in handles], loc="upper left", frameon=False)
    fig.autofmt_xdate()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()

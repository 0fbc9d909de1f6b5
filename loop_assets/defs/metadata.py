"""Metadata the Dagster UI shows: column schemas from the table contract, previews, figures."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

import dagster as dg
import polars as pl

from loop_assets.run_progress import day_span
from loop_assets.tables import TABLES


def column_schema(table: str) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name=name, type=str(dtype), description=description)
            for name, (dtype, description) in TABLES[table].items()
        ]
    )


def table_metadata(table: str) -> dict[str, object]:
    """Definition-time metadata of a table asset: its column schema and where it lives."""
    return {"dagster/column_schema": column_schema(table), "dagster/table_name": f"warehouse.main.{table}"}


def markdown_preview(frame: pl.DataFrame, limit: int = 10, width: int = 60) -> dg.MetadataValue:
    """The first rows as a markdown table, long cells cut to `width` characters."""
    if frame.height == 0:
        return dg.MetadataValue.md("_no rows_")
    head = frame.head(limit)
    cells = [[_cell(v, width) for v in row] for row in head.iter_rows()]
    lines = ["| " + " | ".join(head.columns) + " |", "|" + "---|" * len(head.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    if frame.height > limit:
        lines.append(f"\n_{frame.height - limit} more rows_")
    return dg.MetadataValue.md("\n".join(lines))


def _cell(value: object, width: int) -> str:
    text = "" if value is None else str(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def problems_check(check_name: str, problems: pl.DataFrame, count_key: str, **extra: object) -> dg.AssetCheckResult:
    """A check of the asset's invariant: passes when `problems` (rows that break it) is empty, which it
    counts under `count_key` and shows as a preview (dates as text)."""
    shown = problems.with_columns(pl.col(pl.Date).cast(pl.String))
    return dg.AssetCheckResult(
        check_name=check_name,
        passed=problems.height == 0,
        metadata={count_key: problems.height, "examples": markdown_preview(shown), **extra},
    )


def add_day_metadata(
    context: dg.AssetExecutionContext, asset_key: str, figures_by_day: Mapping[date, Mapping[str, object]]
) -> None:
    """Each day's own figures onto that day's materialisation.

    A range run (`make run`, a backfill, a file that crosses midnight) writes one materialisation per day;
    the metadata of its `MaterializeResult` lands on every one of them, so a total there would be plotted as
    every day's figure. Per-day figures go through here instead; what the result carries is the run's only.
    """
    for day, figures in figures_by_day.items():
        context.add_asset_metadata(dict(figures), asset_key=asset_key, partition_key=str(day))


def run_metadata(days: list[date], **figures: object) -> dict[str, object]:
    """The run's own figures (timings, the days it covered), labelled as the run's on each day it wrote."""
    return {"run_days": day_span(days[0], days[-1]), "run": dg.MetadataValue.json({"days": len(days), **figures})}

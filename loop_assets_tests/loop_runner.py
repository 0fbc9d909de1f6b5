"""Real Dagster runs of the loop against a temporary DuckDB file and generated traffic (a test helper)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl

from loop_assets.definitions import daily_assets
from loop_assets.defs.resources import Embedder, LlmEndpoints, LoopSettings, Warehouse

START = date(2026, 11, 16)
DAYS = [START + timedelta(days=i) for i in range(3)]


class Loop:
    """A warehouse, an incoming folder and an instance, and helpers to run assets against them."""

    def __init__(self, root: Path, config_path: Path | None = None):
        self.root = root
        self.config_path = config_path
        self.incoming = root / "incoming"
        self.incoming.mkdir(parents=True, exist_ok=True)
        self.warehouse = root / "warehouse.duckdb"
        self.instance = dg.DagsterInstance.ephemeral()

    def resources(self) -> dict[str, object]:
        return {
            "settings": LoopSettings(
                incoming_dir=str(self.incoming), config_path=str(self.config_path) if self.config_path else None
            ),
            "warehouse": Warehouse(database=str(self.warehouse)),
            "embedder": Embedder(),
            "endpoints": LlmEndpoints(),
        }

    def run(
        self,
        day: date | None = None,
        *,
        days: tuple[date, date] | None = None,
        select=None,
        raise_on_error=True,
        run_config=None,
    ):
        assets = daily_assets
        if select is not None:
            assets = [a for a in daily_assets if any(k.to_user_string() in select for k in a.keys)]
        tags = {}
        if days is not None:
            tags = {
                "dagster/asset_partition_range_start": str(days[0]),
                "dagster/asset_partition_range_end": str(days[1]),
            }
        return dg.materialize(
            assets,
            partition_key=str(day) if day else None,
            tags=tags,
            resources=self.resources(),
            instance=self.instance,
            raise_on_error=raise_on_error,
            run_config=run_config,
        )

    def run_asset(self, assets_def: dg.AssetsDefinition, run_config: dict | None = None, raise_on_error=True):
        """Materialise an unpartitioned asset (eval_run, suite_coverage) against this loop's warehouse."""
        return dg.materialize(
            [assets_def], resources=self.resources(), instance=self.instance, run_config=run_config,
            raise_on_error=raise_on_error, selection=[assets_def.key],
        )  # fmt: skip

    def table(self, sql: str) -> pl.DataFrame:
        with duckdb.connect(str(self.warehouse), read_only=True) as con:
            return con.execute(sql).pl()


def metadata(result: dg.ExecuteInJobResult, asset: str) -> list[dict]:
    """Metadata values of each materialisation of `asset` in the run."""
    return [
        {k: v.value for k, v in event.materialization.metadata.items()}
        for event in result.get_asset_materialization_events()
        if event.materialization.asset_key.to_user_string() == asset
    ]


def checks(result: dg.ExecuteInJobResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def new_loop(root: Path, traffic: Path, config_path: Path | None = None) -> Loop:
    loop = Loop(root, config_path)
    for f in sorted(traffic.iterdir()):
        (loop.incoming / f.name).write_bytes(f.read_bytes())
    return loop

"""What Dagster loads: every table asset in the one-writer pool, described, typed and partitioned by day."""

from __future__ import annotations

import dagster as dg
import yaml

from loop_assets.definitions import daily_assets, defs
from loop_assets.defs.partitions import DUCKDB_POOL
from loop_assets.tables import LOOP_TABLES, TABLES
from loop_assets_tests.paths import ROOT


def test_definitions_load_and_hold_the_loop():
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == {*LOOP_TABLES, "suite_coverage", "eval_run"}
    checks = {k.name for k in graph.asset_check_keys}
    assert {
        "records_accounted_for",
        "every_trace_scored",
        "every_failure_clustered",
        "every_failure_covered",
        "no_near_duplicate_cases",
        "complete_provenance",
        "unique_case_text",
    } <= checks


def test_every_duckdb_writer_is_in_the_pool_and_backfills_in_one_run():
    executable = [a for a in defs.resolve_asset_graph().assets_defs if a.is_executable]
    assert all(a.op.pool == DUCKDB_POOL for a in executable)  # readers too: DuckDB locks the file per process
    on_demand = {dg.AssetKey("suite_coverage"), dg.AssetKey("eval_run")}
    daily = [a for a in executable if not on_demand & set(a.keys)]
    assert len(daily) == 5  # raw_traces and quarantined_records are one multi-asset
    for assets_def in daily:
        assert assets_def.backfill_policy == dg.BackfillPolicy.single_run(), assets_def.keys
        assert isinstance(assets_def.partitions_def, dg.DailyPartitionsDefinition)


def test_the_project_instance_runs_one_duckdb_writer_at_a_time():
    config = yaml.safe_load((ROOT / ".dagster_home" / "dagster.yaml").read_text())
    assert config["concurrency"]["pools"]["default_limit"] == 1


def test_every_table_asset_has_a_description_kinds_and_its_column_schema():
    graph = defs.resolve_asset_graph()
    for name in LOOP_TABLES:
        node = graph.get(dg.AssetKey(name))
        assert node.description and len(node.description) > 40
        assert {"duckdb", "polars"} <= set(node.kinds)
        schema = node.metadata["dagster/column_schema"]
        assert [c.name for c in schema.columns] == list(TABLES[name])
        assert all(c.description for c in schema.columns)


def test_grading_depends_on_its_own_previous_day():
    graph = defs.resolve_asset_graph()
    graded = dg.AssetKey("graded_candidates")
    assert graded in graph.get(graded).parent_keys


def test_one_registry_names_the_loop_s_daily_assets():
    keys = [k.to_user_string() for a in daily_assets for k in a.keys]
    assert sorted(keys) == sorted(LOOP_TABLES) and len(keys) == len(set(keys))

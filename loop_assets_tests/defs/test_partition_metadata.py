"""What the UI shows per partition is that partition's own figure, whatever the run's shape.

A range run (`make run`, a backfill, a file crossing midnight) writes one materialisation per day. Each is
read back through Dagster's own API (the instance's event log, as the UI reads it) and compared with a
direct count in DuckDB for that day.
"""

from __future__ import annotations

from datetime import date

import dagster as dg
import pytest

from loop_assets_tests.loop_runner import DAYS, Loop, new_loop

# asset -> {metadata key: the day's figure as SQL over the warehouse ($day is the partition)}
DAY_FIGURES = {
    "raw_traces": {
        "traces": "SELECT count(*) FROM raw_traces WHERE day = $day",
        "dagster/row_count": "SELECT count(*) FROM raw_traces WHERE day = $day",
        "files": "SELECT count(DISTINCT source_file) FROM raw_traces WHERE day = $day",
    },
    "quarantined_records": {
        "quarantined": "SELECT count(*) FROM quarantined_records WHERE partition_day = $day",
    },
    "scored_traces": {
        "traces": "SELECT count(*) FROM scored_traces WHERE day = $day",
        "failures": "SELECT count(*) FROM scored_traces WHERE day = $day AND is_failure",
        "failures_feedback": "SELECT count(*) FROM scored_traces WHERE day = $day AND is_failure "
        "AND list_contains(list_transform(failure_signals, s -> s.scorer), 'feedback')",
    },
    "failure_clusters": {
        "failures": "SELECT count(*) FROM failure_clusters WHERE day = $day",
        "distinct_texts": "SELECT count(DISTINCT text_hash) FROM failure_clusters WHERE day = $day",
        "clusters": "SELECT count(DISTINCT cluster_id) FROM failure_clusters WHERE day = $day AND cluster_id >= 0",
        "representatives": "SELECT count(*) FROM failure_clusters WHERE day = $day AND is_representative",
    },
    "graded_candidates": {
        "failing_inputs": "SELECT count(*) FROM graded_candidates WHERE day = $day",
        "promoted": "SELECT count(*) FROM graded_candidates WHERE day = $day AND decision = 'promote'",
    },
    "eval_suite": {
        "promoted": "SELECT count(*) FROM eval_suite WHERE day = $day",
        "suite_size": "SELECT count(*) FROM eval_suite WHERE status = 'active' "
        "AND coalesce(in_suite_from, day) <= $day",
    },
}


@pytest.fixture(scope="module")
def range_run(tmp_path_factory, traffic) -> tuple[Loop, dg.ExecuteInJobResult]:
    """Every day of the traffic in one run, as `make run` does."""
    loop = new_loop(tmp_path_factory.mktemp("range_run"), traffic)
    result = loop.run(days=(DAYS[0], DAYS[-1]))
    assert result.success
    return loop, result


def day_metadata(instance: dg.DagsterInstance, asset: str, day: date) -> dict[str, object]:
    """The metadata of the latest materialisation of `asset`'s partition `day`, as the UI reads it."""
    [record] = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[str(day)]), limit=1
    ).records
    return {k: v.value for k, v in record.asset_materialization.metadata.items()}


@pytest.mark.parametrize("asset", sorted(DAY_FIGURES))
def test_every_partition_of_a_range_run_shows_its_own_figures(range_run, asset):
    loop, _ = range_run
    for day in DAYS:
        shown = day_metadata(loop.instance, asset, day)
        for key, sql in DAY_FIGURES[asset].items():
            counted = loop.table(sql.replace("$day", f"DATE '{day}'")).item()
            assert shown[key] == counted, (asset, str(day), key, shown[key], counted)
        assert shown["run_days"] == f"{DAYS[0]}...{DAYS[-1]}"


def test_the_days_of_a_range_differ_where_the_data_does(range_run):
    """Not one total copied onto every day: the sample's days have different traffic."""
    loop, _ = range_run
    traces = [day_metadata(loop.instance, "scored_traces", day)["traces"] for day in DAYS]
    suite = [day_metadata(loop.instance, "eval_suite", day)["suite_size"] for day in DAYS]
    assert sum(traces) == loop.table("SELECT count(*) FROM scored_traces").item()
    assert suite == sorted(suite) and suite[0] < suite[-1]


def test_eval_suite_shows_the_whole_current_suite_whichever_day_ran_last(range_run):
    loop, _ = range_run
    active = loop.table("SELECT case_id, source_file, source_line FROM eval_suite WHERE status = 'active'")
    rerun = loop.run(DAYS[0], select={"eval_suite"})  # an old day runs last: the page still shows every case
    assert rerun.success
    [record] = loop.instance.fetch_materializations(dg.AssetKey("eval_suite"), limit=1).records
    shown = {k: v.value for k, v in record.asset_materialization.metadata.items()}
    assert record.asset_materialization.partition == str(DAYS[0])
    assert shown["suite_now_size"] == active.height
    lineage = shown["lineage"]
    assert f"{active.height} of {active.height} active cases" in lineage
    for case_id, source_file, source_line in active.iter_rows():
        assert case_id in lineage and f"{source_file}:{source_line}" in lineage
    assert "(/runs/" in lineage  # the run that promoted a case is one click away

"""The tools' own exports (fixtures/formats/real-exports, see its PROVENANCE.md) read call by call.

Each file's LLM calls were counted by hand and are listed with what each must give in expected.json;
`real_exports.outcome` compares capture's rows field by field with that.
"""

from __future__ import annotations

import json
import shutil

import pytest

from loop_assets_tests.capture.formats.helpers import check_accounting, run
from loop_assets_tests.capture.formats.real_exports import (
    CFG,
    REAL_EXPORTS,
    UNDATED_CFG,
    expected,
    outcome,
    read,
    real_files,
)

SPECS = expected()


def test_every_real_export_has_its_calls_counted_in_expected_json():
    assert real_files() == sorted(SPECS)


@pytest.mark.parametrize("rel", sorted(SPECS))
def test_each_real_export_gives_the_calls_it_holds_field_by_field(rel):
    result = read(REAL_EXPORTS / rel)
    check_accounting(result)
    out = outcome(rel, result, SPECS[rel])
    assert out.wrong == {} and out.missing == [] and out.unexpected == []
    assert sorted(out.right) == sorted(SPECS[rel]["calls"])
    assert sorted(out.quarantined_as_expected) == sorted(SPECS[rel].get("quarantined", {}))
    assert out.formats == [SPECS[rel]["format"]]  # detected without ingest.format


@pytest.mark.parametrize("rel", sorted(rel for rel, spec in SPECS.items() if "calls_with_undated_day" in spec))
def test_files_without_times_give_their_calls_on_the_day_the_user_sets(rel):
    result = read(REAL_EXPORTS / rel, cfg=UNDATED_CFG)
    check_accounting(result)
    out = outcome(rel, result, SPECS[rel], undated=True)
    assert out.wrong == {} and out.missing == [] and out.unexpected == []
    assert sorted(out.right) == sorted(SPECS[rel]["calls_with_undated_day"])
    for meta in map(json.loads, result.traces["metadata"]):  # each row says where its day came from
        assert "ingest.undated_day" in (meta.get("ts_from"), meta.get("span", {}).get("ts_from"))


def test_a_redelivered_export_adds_nothing(tmp_path):
    names = [
        "langfuse/lf_vercel-aisdk-2025-11-17.trace.json",
        "langsmith/ls_js_wrap_openai_default.json",
        "otel_genai/vercel_ai_v6_all_spans.json",
    ]
    for name in names:
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REAL_EXPORTS / name, target)
        shutil.copy(REAL_EXPORTS / name, target.with_name("again_" + target.name))
    result = run(tmp_path, CFG)
    assert result.traces.height == 1 + 1 + 4
    assert all(f.split("/")[-1].startswith(("lf_", "ls_", "vercel_")) for f in result.traces["source_file"])
    assert result.quarantine["reason_code"].to_list() == ["duplicate_record"] * 6


def test_trace_level_scores_go_to_the_last_call_that_can_be_read(tmp_path):
    data = json.loads((REAL_EXPORTS / "langfuse/lf_langgraph-js-2025-10-30.trace.json").read_text(encoding="utf-8"))
    generations = [o for o in data["observations"] if o["type"] == "GENERATION"]
    last = max(generations, key=lambda o: o["startTime"])
    last["input"] = '{"content":"role"}'  # as the Claude Agent SDK logs later turns: no request to read
    (tmp_path / "trace.json").write_text(json.dumps(data), encoding="utf-8")
    result = run(tmp_path, CFG)
    assert result.traces.height == 1 and result.quarantine.height == 1
    kept = result.traces.row(0, named=True)
    assert kept["span_id"] != last["id"]
    scores = json.loads(kept["feedback"])
    assert sorted(s["name"] for s in scores) == ["hallucination", "toxicity"]
    assert {s["scope"] for s in scores} == {"trace"}


def test_a_wrapping_generation_is_listed_as_skipped_naming_the_call_it_wraps():
    result = read(REAL_EXPORTS / "langfuse/lf_vercel-aisdk-2025-11-17.trace.json")
    wrapper = result.skipped.filter(result.skipped["item_id"] == "1dc6768109615657").to_dicts()
    assert len(wrapper) == 1 and "wraps generation 91a17a2274bfd23f" in wrapper[0]["reason"]


def test_spans_without_content_name_the_setting_that_turns_it_on():
    result = read(REAL_EXPORTS / "otel_genai/gen_otelcontrib_openai_v2_default.jsonl")
    assert result.traces.height == 0
    for reason in result.quarantine["reason"]:
        assert "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=SPAN_ONLY" in reason
        assert "OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental" in reason


def test_a_wrapper_is_the_row_when_the_call_it_wraps_cannot_be_read(tmp_path):
    data = json.loads((REAL_EXPORTS / "langfuse/lf_vercel-aisdk-2025-11-17.trace.json").read_text(encoding="utf-8"))
    inner = next(o for o in data["observations"] if o["id"] == "91a17a2274bfd23f")
    inner["input"] = None
    (tmp_path / "trace.json").write_text(json.dumps(data), encoding="utf-8")
    result = run(tmp_path, CFG)
    (row,) = result.traces.to_dicts()
    assert (
        row["span_id"] == "1dc6768109615657" and row["input_text"] == "What is the weather like today in San Francisco?"
    )
    assert result.quarantine["reason_code"].to_list() == ["missing_field"]  # the inner call, without its request

"""The deterministic sample-traffic generator and the committed sample in data/sample/."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
import yaml

from loop_assets.devtools import sample_traffic as st
from loop_assets.devtools.sample_traffic import APPS, FAILURE_FAMILIES, generate_traffic, write_traffic
from loop_assets_tests.paths import CONFIG_FILE, SAMPLE_DIR

SIGNALS = {"provider_error", "empty_output", "json_schema", "truncated_output", "feedback", "latency"}
TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def _text(name: str, data: bytes) -> str:
    if name.endswith(".gz"):
        data = gzip.decompress(data)
    return data.decode("utf-8")


def _day_of(name: str) -> date:
    return date.fromisoformat(re.search(r"traces-(\d{4}-\d{2}-\d{2})\.jsonl", name).group(1))


def _parse_ts(value: str) -> datetime:
    return datetime.strptime(value, TS_FORMAT)


def _is_good(record: dict) -> bool:
    """A record the loop can ingest: every field it needs, of the right type."""
    return (
        isinstance(record, dict)
        and isinstance(record.get("timestamp"), str)
        and isinstance(record.get("request", {}).get("messages"), list)
        and isinstance(record.get("latency_ms"), int | float)
    )


def _user_input(record: dict) -> str:
    """The conversation without the system prompt: what the user asked, including earlier turns."""
    return json.dumps(record["request"]["messages"][1:], ensure_ascii=False)


def _output(record: dict) -> str | None:
    if record["response"] is None:
        return None
    return record["response"]["choices"][0]["message"]["content"]


def _violates_schema(content: str) -> bool:
    try:
        value = json.loads(content)
    except json.JSONDecodeError:
        return True
    return not (
        isinstance(value, dict)
        and set(value) == {"sql", "explanation"}
        and isinstance(value["sql"], str)
        and value["sql"] != ""
        and isinstance(value["explanation"], str)
    )


class Sample:
    """The default sample, parsed: good records per file and the lines that are not."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.good: dict[str, list[dict]] = {}
        self.bad: dict[str, list[str]] = {}
        for name, data in files.items():
            good, bad = [], []
            for line in _text(name, data).splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    record = None
                if _is_good(record):
                    good.append(record)
                else:
                    bad.append(line)
            self.good[name], self.bad[name] = good, bad

    @property
    def records(self) -> list[dict]:
        return [r for rs in self.good.values() for r in rs]

    def by_family(self) -> dict[str, list[tuple[str, dict]]]:
        out: dict[str, list[tuple[str, dict]]] = defaultdict(list)
        for name, rs in self.good.items():
            for r in rs:
                if r["metadata"]["scenario"] != "healthy":
                    out[r["metadata"]["scenario"]].append((name, r))
        return out


@pytest.fixture(scope="module")
def sample() -> Sample:
    return Sample(generate_traffic())


# ---- determinism and the committed sample -------------------------------------------------------


def test_same_arguments_give_identical_bytes_and_another_seed_differs():
    first = generate_traffic(days=2, per_day=150, seed=11)
    again = generate_traffic(days=2, per_day=150, seed=11)
    other = generate_traffic(days=2, per_day=150, seed=12)
    assert first == again
    assert list(other) == list(first)
    assert all(other[name] != first[name] for name in first)


def test_committed_sample_is_reproduced_byte_for_byte():
    committed = {p.name: p.read_bytes() for p in sorted(SAMPLE_DIR.iterdir()) if p.is_file()}
    generated = generate_traffic()
    assert sorted(committed) == sorted(generated), "data/sample holds other files than generate_traffic()"
    for name, data in generated.items():
        if name.endswith(".gz"):
            # Compressed bytes may differ between zlib builds; the content and header must not.
            assert gzip.decompress(committed[name]) == gzip.decompress(data), name
            assert committed[name][4:8] == b"\0\0\0\0", f"{name}: gzip mtime must be 0"
        else:
            assert committed[name] == data, (
                f"{name} differs: regenerate with python -m loop_assets.devtools.sample_traffic"
            )


def test_files_are_one_per_day_and_the_last_is_gzip(sample: Sample):
    names = list(sample.files)
    start = date(2026, 11, 16)
    expected = [f"traces-{start + timedelta(days=i)}.jsonl" for i in range(7)]
    expected[-1] += ".gz"
    assert names == expected
    last = sample.files[names[-1]]
    assert last[:2] == b"\x1f\x8b" and last[4:8] == b"\0\0\0\0"
    assert all(not sample.files[n].startswith(b"\x1f\x8b") for n in names[:-1])
    gzip.decompress(last)  # a complete stream


def test_write_traffic_writes_what_generate_traffic_returns(tmp_path: Path):
    out = tmp_path / "nested" / "incoming"
    paths = write_traffic(out, days=3, per_day=60, seed=3)
    expected = generate_traffic(days=3, per_day=60, seed=3)
    assert [p.name for p in paths] == list(expected)
    assert all(p.parent == out and p.read_bytes() == expected[p.name] for p in paths)


def test_sample_is_well_under_five_megabytes_with_about_3500_traces(sample: Sample):
    total = sum(len(b) for b in sample.files.values())
    assert total < 4_500_000
    assert len(sample.records) == 7 * 500


# ---- record shape ---------------------------------------------------------------------------------


def test_good_records_have_the_openai_chat_shape(sample: Sample):
    ids = Counter()
    for r in sample.records:
        ids[r["id"]] += 1
        assert re.fullmatch(r"tr_[0-9a-f]{16}", r["id"])
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", r["timestamp"])
        assert r["app"] in APPS
        messages = r["request"]["messages"]
        assert messages[0] == {"role": "system", "content": APPS[r["app"]]["system"]}
        assert messages[-1]["role"] == "user" and messages[-1]["content"]
        assert all(m["role"] in {"user", "assistant"} for m in messages[1:])
        assert r["request"]["model"] == APPS[r["app"]]["model"]
        assert r["latency_ms"] > 0
        assert set(r["metadata"]) >= {"user_id", "session_id", "env", "scenario"}
        if r["error"] is not None:
            assert r["response"] is None
            assert r["error"]["code"] in {429, 500, 502, 503} and r["error"]["message"]
        else:
            choice = r["response"]["choices"][0]
            assert re.fullmatch(r"chatcmpl-[0-9a-f]{24}", r["response"]["id"])
            assert choice["message"]["role"] == "assistant" and isinstance(choice["message"]["content"], str)
            assert choice["finish_reason"] in {"stop", "length"}
            usage = r["response"]["usage"]
            assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
        if r["feedback"] is not None:
            assert r["feedback"]["thumbs"] in {"up", "down"}
            assert set(r["feedback"]) <= {"thumbs", "rating", "comment", "corrected_output"}
            assert r["feedback"].get("rating", 3) in range(1, 6)
    assert max(ids.values()) == 1, "trace ids must be unique"


def test_app_budgets_match_the_project_config():
    config = yaml.safe_load(CONFIG_FILE.read_text())
    assert set(config["apps"]) == set(APPS)
    for app, cfg in APPS.items():
        assert config["apps"][app]["latency_budget_ms"] == cfg["latency_budget_ms"], app
    assert {f["signal"] for f in FAILURE_FAMILIES.values()} <= set(config["scoring"]["severity_weights"])


def test_records_are_roughly_sorted_and_some_cross_midnight(sample: Sample):
    for name, records in sample.good.items():
        day = _day_of(name)
        stamps = [_parse_ts(r["timestamp"]) for r in records]
        start = datetime(day.year, day.month, day.day)
        assert all(start <= ts < start + timedelta(days=1, minutes=30) for ts in stamps), name
        late = [ts for ts in stamps if ts >= start + timedelta(days=1)]
        assert 1 <= len(late) <= 0.03 * len(stamps), name
        in_order = sum(a <= b for a, b in pairwise(stamps))
        assert in_order >= 0.9 * (len(stamps) - 1), name
        assert in_order < len(stamps) - 1, f"{name}: logging order should not be exactly request order"


# ---- healthy traffic ------------------------------------------------------------------------------


def test_healthy_traffic_dominates_and_families_are_five_to_twenty_percent(sample: Sample):
    scenarios = Counter(r["metadata"]["scenario"] for r in sample.records)
    assert set(scenarios) == {"healthy", *FAILURE_FAMILIES}
    share = (len(sample.records) - scenarios["healthy"]) / len(sample.records)
    assert 0.05 <= share <= 0.20
    apps = Counter(r["app"] for r in sample.records if r["metadata"]["scenario"] == "healthy")
    assert all(apps[a] >= 0.15 * scenarios["healthy"] for a in APPS)


def test_healthy_inputs_vary_and_include_short_follow_ups(sample: Sample):
    healthy = [r for r in sample.records if r["metadata"]["scenario"] == "healthy"]
    for app in APPS:
        inputs = {_user_input(r) for r in healthy if r["app"] == app}
        assert len(inputs) >= 300, app
    topics = {
        app: len(t) for app, t in [("support", st.SUPPORT_TOPICS), ("sql", st.SQL_TOPICS), ("doc", st.DOC_TOPICS)]
    }
    assert min(topics.values()) >= 10
    short_turns = [
        r
        for r in healthy
        if r["app"] == "support_bot" and len(r["request"]["messages"]) >= 4
        if len(r["request"]["messages"][-1]["content"]) < 40
    ]
    assert len(short_turns) >= 50
    assert {r["request"]["messages"][-1]["content"].lower() for r in short_turns} >= {"yes please"}
    assert "what about the other one?" in {r["request"]["messages"][-1]["content"].lower() for r in short_turns}


def test_healthy_sql_outputs_are_json_objects_of_the_required_shape(sample: Sample):
    outputs = [
        _output(r)
        for r in sample.records
        if r["app"] == "sql_assistant" and r["metadata"]["scenario"] == "healthy" and r["error"] is None
    ]
    assert len(outputs) > 500
    assert not [o for o in outputs if _violates_schema(o)]


def test_healthy_outputs_are_complete_and_mostly_fast(sample: Sample):
    healthy = [r for r in sample.records if r["metadata"]["scenario"] == "healthy"]
    answered = [r for r in healthy if r["error"] is None]
    assert all(_output(r) and r["response"]["choices"][0]["finish_reason"] == "stop" for r in answered)
    assert all(r["feedback"] is None or r["feedback"]["thumbs"] == "up" for r in healthy)
    slow = [r for r in healthy if r["latency_ms"] > APPS[r["app"]]["latency_budget_ms"]]
    assert 0.002 * len(healthy) <= len(slow) <= 0.03 * len(healthy), "the latency tail is sporadic, not absent"
    assert len(healthy) - len(answered) <= 0.01 * len(healthy)


def test_feedback_on_about_fifteen_percent_with_some_corrections(sample: Sample):
    with_feedback = [r for r in sample.records if r["feedback"] is not None]
    assert 0.10 <= len(with_feedback) / len(sample.records) <= 0.20
    thumbs = Counter(r["feedback"]["thumbs"] for r in with_feedback)
    assert thumbs["up"] > thumbs["down"] > 0
    corrected = [r for r in with_feedback if "corrected_output" in r["feedback"]]
    assert len(corrected) >= 10
    assert all(r["feedback"]["thumbs"] == "down" for r in corrected)


# ---- failure families -----------------------------------------------------------------------------


def test_family_table_is_consistent():
    assert len(FAILURE_FAMILIES) >= 8
    assert set(FAILURE_FAMILIES) == set(st.FAMILY_BUILDERS)
    for name, family in FAILURE_FAMILIES.items():
        assert family["app"] in APPS, name
        assert family["signal"] in SIGNALS, name
    assert {f["app"] for f in FAILURE_FAMILIES.values()} == set(APPS)
    assert len({f["signal"] for f in FAILURE_FAMILIES.values()}) == len(SIGNALS)


def test_every_family_recurs_with_many_paraphrases_and_some_exact_repeats(sample: Sample):
    families = sample.by_family()
    for name, family in FAILURE_FAMILIES.items():
        rows = families[name]
        assert {r["app"] for _, r in rows} == {family["app"]}, name
        days = {file for file, _ in rows}
        assert len(days) >= 6, f"{name} appears on {len(days)} of 7 days"
        inputs = Counter(_user_input(r) for _, r in rows)
        assert len(inputs) >= 5, f"{name}: only {len(inputs)} distinct inputs"
        repeats = len(rows) - len(inputs)
        assert repeats >= 2, f"{name}: no exact repeats"
        assert repeats <= 0.4 * len(rows), f"{name}: mostly repeats"


def test_every_family_record_shows_its_signal(sample: Sample):
    for name, rows in sample.by_family().items():
        family = FAILURE_FAMILIES[name]
        for _, r in rows:
            signal = family["signal"]
            budget = APPS[r["app"]]["latency_budget_ms"]
            if signal == "provider_error":
                assert r["response"] is None and r["error"]["code"] in {500, 503}, name
                continue
            assert r["error"] is None, name
            content = _output(r)
            finish = r["response"]["choices"][0]["finish_reason"]
            if signal == "feedback":
                assert r["feedback"]["thumbs"] == "down" and r["feedback"].get("rating", 1) <= 2, name
            elif signal == "empty_output":
                assert content == "" and finish == "stop", name
            elif signal == "json_schema":
                assert _violates_schema(content), (name, content)
            elif signal == "truncated_output":
                assert finish == "length" and content and not content.endswith("."), name
            elif signal == "latency":
                assert r["latency_ms"] > budget, name
            if signal != "latency":
                assert r["latency_ms"] < budget, f"{name}: only its own signal should fire"


def test_json_schema_families_fail_in_different_ways(sample: Sample):
    families = sample.by_family()
    window = [_output(r) for _, r in families["window_function_sql"]]
    assert any(o.startswith("```") for o in window) and any(o.startswith("Sure!") for o in window)

    def parses(o: str) -> bool:
        try:
            json.loads(o)
        except json.JSONDecodeError:
            return False
        return True

    assert not any(parses(o) for o in window), "window_function_sql outputs are never valid JSON"
    bucketing = [json.loads(_output(r)) for _, r in families["date_bucketing_sql"]]
    shapes = {tuple(sorted(o)) + (("empty",) if o.get("sql") == "" else ()) for o in bucketing}
    assert len(shapes) >= 3


def test_families_differ_in_topic(sample: Sample):
    """Words that mark a family's subject appear in its inputs and not in other families' inputs."""
    markers = {
        "refund_policy_hallucination": ("refund",),
        "order_tracking_international": ("customs",),
        "cancel_subscription_loop": ("cancel",),
        "window_function_sql": ("running total", "cumulative"),
        "date_bucketing_sql": ("week", "month"),
        "category_hierarchy_sql": ("subcategor",),
        "long_contract_summary": ("agreement",),
        "medical_report_summary": ("laboratory report",),
        "sales_call_action_items": ("pilot",),
    }
    families = sample.by_family()
    for name, words in markers.items():
        own = [_user_input(r).lower() for _, r in families[name]]
        assert sum(any(w in t for w in words) for t in own) >= 0.6 * len(own), name
        for other, rows in families.items():
            if other != name and FAILURE_FAMILIES[other]["app"] == FAILURE_FAMILIES[name]["app"]:
                assert not any(any(w in _user_input(r).lower() for w in words) for _, r in rows), (name, other)


# ---- malformed lines ------------------------------------------------------------------------------


def _malformed_kind(line: str) -> str:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return "truncated_json" if line.startswith("{") else "log_noise"
    if "timestamp" not in record:
        return "missing_timestamp"
    if not isinstance(record["request"]["messages"], list):
        return "messages_not_list"
    assert not isinstance(record["latency_ms"], int | float)
    return "latency_not_numeric"


def test_each_day_has_a_few_malformed_lines_among_good_ones(sample: Sample):
    kinds = Counter()
    for name, lines in sample.bad.items():
        assert 2 <= len(lines) <= 4, name
        all_lines = _text(name, sample.files[name]).splitlines()
        positions = [all_lines.index(line) for line in lines]
        assert all(0 < p < len(all_lines) - 1 for p in positions), f"{name}: malformed lines sit among good ones"
        for line in lines:
            kinds[_malformed_kind(line)] += 1
    assert set(kinds) == set(st.MALFORMED_KINDS)


def test_truncated_lines_are_a_prefix_of_a_record(sample: Sample):
    truncated = [line for lines in sample.bad.values() for line in lines if _malformed_kind(line) == "truncated_json"]
    assert truncated
    for line in truncated:
        assert line.startswith('{"id":"tr_') and len(line) > 100


def test_the_shipped_calibration_texts_are_the_generator_s_last_user_turns():
    # dedup/calibration_texts.txt is data made once from generated traffic, so the runtime needs no generator
    from loop_assets.dedup.backends import calibration_texts

    texts = []
    for data in st.generate_traffic(days=1, per_day=1000, seed=20261116, start=date(2026, 1, 5)).values():
        for line in gzip.decompress(data).decode("utf-8").splitlines():
            try:
                messages = json.loads(line)["request"]["messages"]
            except (ValueError, KeyError, TypeError):
                continue
            texts.append(" ".join(str(messages[-1]["content"]).split()).lower()[:2000])
    assert calibration_texts() == texts[:1000]

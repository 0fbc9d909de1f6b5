"""No PII and no secret leaves the loop: a full Dagster run over traffic seeded with PII and a fake API key,
with the judge and the model endpoint keyed from an environment variable, then every output searched.

Outputs searched: eval_suite, failure_clusters, graded_candidates, the embedding cache (its keys must
not be hashes of unredacted texts), every export format, the Dagster event log of every run (metadata,
logs) and, for the endpoint key, every warehouse table.
"""

from __future__ import annotations

import gzip
import json
import random
import re
from pathlib import Path

import duckdb
import polars as pl
import pytest
import yaml
from dagster import serialize_value

from loop_assets.config import DEFAULT_CONFIG_PATH
from loop_assets.dedup.text import normalised_text, text_hash
from loop_assets.devtools.sample_traffic import write_traffic
from loop_assets.exports import EXPORTERS, read_back, suite_as_of, write_export
from loop_assets.redaction import PLACEHOLDERS, redact_text
from loop_assets_tests.chat_server import ChatServer, Reply
from loop_assets_tests.loop_runner import DAYS, metadata, new_loop
from loop_assets_tests.paths import ROOT
from loop_assets_tests.pii_corpus import cards, emails, ibans, ips, phones

KEY_ENV = "EVAL_LOOP_TEST_ENDPOINT_KEY"
# Deliberately unlike any key format, so redaction cannot hide a leak of it: it must simply never be written.
ENDPOINT_KEY = "evalloop-endpoint-credential-QX7R2M9K4T5W"
SEEDED_KEY_MARK = "EVALLOOPTESTKEY"
BROKEN_LINE_EMAIL = "broken.line.owner@example.com"


def seed_traffic(out: Path) -> list[str]:
    """One day of generated traffic with PII and a fake OpenAI key in every user message, corrected
    answer and provider error, plus a broken line holding an email; returns every seeded value."""
    src = out / "generated"
    write_traffic(src, days=1, per_day=150, seed=23, start=DAYS[0])
    [path] = sorted(src.iterdir())
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    rng = random.Random(5)
    n = len(lines)
    values = {
        "email": emails(rng, 2 * n),
        "phone": phones(rng, n),
        "card": cards(rng, n),
        "iban": ibans(rng, n),
        "ip": ips(rng, n),
    }
    seeded: list[str] = []
    rewritten = []
    for i, line in enumerate(lines):
        try:
            record = json.loads(line)
        except ValueError:
            rewritten.append(line)
            continue
        key = f"sk-proj-{SEEDED_KEY_MARK}{i:04d}abcdefghijklmnopqrstuvwxyz"
        email, phone, card, iban, ip = (values[k][i] for k in ("email", "phone", "card", "iban", "ip"))
        messages = (record.get("request") or {}).get("messages")
        if isinstance(messages, list) and messages and isinstance(messages[-1].get("content"), str):
            messages[-1]["content"] += (
                f" My email is {email}, call me on {phone}. Card {card}, IBAN {iban}, from IP {ip}. Key: {key}"
            )
            seeded += [email, phone, card, iban, ip, key]
        feedback = record.get("feedback")
        if isinstance(feedback, dict) and feedback.get("corrected_output"):
            feedback["corrected_output"] += f" Write to {values['email'][n + i]}."
            seeded.append(values["email"][n + i])
        error = record.get("error")
        if isinstance(error, dict) and error.get("message"):
            error["message"] += f" (account {values['email'][n + i]}, key {key})"
            seeded += [values["email"][n + i], key]
        rewritten.append(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
    rewritten.append('{"id": "broken", "timestamp": "2026-11-16T12:00:00Z", "note": "mail ' + BROKEN_LINE_EMAIL)
    traffic = out / "traffic"
    traffic.mkdir()
    (traffic / "traces-seeded.jsonl").write_text("\n".join(rewritten) + "\n")
    return sorted(set(seeded))


def write_config(path: Path, **sections) -> Path:
    path.write_text(yaml.safe_dump({**yaml.safe_load(DEFAULT_CONFIG_PATH.read_text()), **sections}))
    return path


def replies(body: dict) -> Reply:
    """The judge (model judge-m) fails refund answers; the model under test answers in prose."""
    if body.get("model") == "judge-m":
        return Reply.score(1 if "refund" in body["messages"][-1]["content"].lower() else 5)
    return Reply.chat("Sure! Here is my answer.")


def event_log(loop) -> str:
    """Every event of every run of the loop's instance, serialised (metadata, logs, failures)."""
    runs = loop.instance.get_runs()
    assert runs
    return "\n".join(serialize_value(entry) for run in runs for entry in loop.instance.all_logs(run.run_id))


def leaks(values: list[str], text: str) -> list[str]:
    return [v for v in values if v in text]


@pytest.fixture(scope="module")
def seeded_run(tmp_path_factory):
    """The whole loop for one day over seeded traffic, with judge and model endpoint keyed from the env."""
    root = tmp_path_factory.mktemp("pii")
    seeded = seed_traffic(root)
    with ChatServer(responder=replies) as server, pytest.MonkeyPatch.context() as patch:
        patch.setenv(KEY_ENV, ENDPOINT_KEY)
        endpoint = {"base_url": server.base_url, "api_key_env": KEY_ENV, "concurrency": 8}
        config = write_config(
            root / "eval_loop.yaml",
            judge={**endpoint, "model": "judge-m", "sample_rate": 0.2},
            model_endpoint={**endpoint, "model": "app-m", "retries_per_candidate": 1},
        )
        loop = new_loop(root / "loop", root / "traffic", config)
        result = loop.run(DAYS[0])
        exports = root / "exports"
        with duckdb.connect(str(loop.warehouse), read_only=True) as con:
            suite = suite_as_of(con)
        written = {fmt: write_export(suite, fmt, exports, folder=True).path for fmt in EXPORTERS}
        requests = list(server.requests)
    return loop, result, seeded, written, requests


def test_the_traffic_really_carries_the_seeded_values(seeded_run):
    loop, _, seeded, _, _ = seeded_run
    assert len(seeded) >= 500
    raw = loop.table("SELECT input_text FROM raw_traces").write_ndjson()  # at_ingest is off by default
    assert len(leaks(seeded, raw)) >= 400
    suite = loop.table("SELECT * FROM eval_suite")
    assert suite.height >= 5  # something was promoted, so the searches below are not vacuous


def test_no_seeded_value_in_the_suite_clusters_or_candidates(seeded_run):
    loop, _, seeded, _, _ = seeded_run
    suite = loop.table("SELECT * EXCLUDE (embedding) FROM eval_suite")
    clusters = loop.table("SELECT * EXCLUDE (embedding) FROM failure_clusters")
    graded = loop.table("SELECT * EXCLUDE (embedding) FROM graded_candidates")
    for frame in (suite, clusters, graded):
        dumped = frame.write_ndjson()
        assert leaks(seeded, dumped) == [] and SEEDED_KEY_MARK not in dumped
    # placeholders stand where the values were
    texts = " ".join(suite["input_text"].to_list())
    for placeholder in ("<EMAIL>", "<PHONE>", "<CARD>", "<IBAN>", "<IP>", "<API_KEY>"):
        assert placeholder in texts
    assert "<email>" in " ".join(clusters["text"].to_list())  # normalised (lower case) after redaction
    for messages in suite["input_messages"]:
        assert isinstance(json.loads(messages), list)  # still valid JSON
    assert all("@" not in e for e in suite["expected_output"].drop_nulls())  # corrected answers carried emails


def test_the_embedding_cache_holds_only_redacted_texts(seeded_run):
    loop, _, _, _, _ = seeded_run
    failing = loop.table(
        "SELECT r.input_text FROM raw_traces r JOIN scored_traces s USING (trace_id, day) WHERE s.is_failure"
    )
    unredacted = set(failing.select(text_hash(normalised_text(pl.col("input_text"), 2000)).alias("h"))["h"].to_list())
    cached = set(loop.table("SELECT text_hash FROM embedding_cache")["text_hash"].to_list())
    clustered = set(loop.table("SELECT text_hash FROM failure_clusters")["text_hash"].to_list())
    assert cached and clustered <= cached
    assert not (unredacted & cached)  # no text with PII was ever embedded
    assert loop.table("SELECT * FROM embedding_cache").columns == ["model", "text_hash", "embedding", "created_at"]


def test_no_seeded_value_in_any_export(seeded_run):
    _, _, seeded, written, _ = seeded_run
    assert set(written) == set(EXPORTERS)
    for fmt, path in written.items():
        for text in (path.read_text(), json.dumps(read_back(fmt, path), ensure_ascii=False)):
            assert leaks(seeded, text) == [], fmt
            assert SEEDED_KEY_MARK not in text, fmt
        assert "<EMAIL>" in path.read_text(), fmt


def test_no_seeded_value_in_run_metadata_or_logs(seeded_run):
    loop, result, seeded, _, _ = seeded_run
    assert result.success
    log = event_log(loop)
    assert leaks(seeded, log) == [] and SEEDED_KEY_MARK not in log
    assert "<EMAIL>" in log  # previews show placeholders
    [raw_meta] = metadata(result, "raw_traces")
    assert raw_meta["redaction"].startswith("after ingest")


def test_the_endpoint_key_is_used_but_never_written(seeded_run):
    loop, _, _, written, requests = seeded_run
    assert redact_text(ENDPOINT_KEY) == (ENDPOINT_KEY, {})  # redaction cannot hide a leak of this key
    models = {r.json.get("model") for r in requests}
    assert {"judge-m", "app-m"} <= models  # both endpoints were called ...
    assert all(r.headers.get("authorization") == f"Bearer {ENDPOINT_KEY}" for r in requests)  # ... with the key
    tables = loop.table("SELECT table_name FROM information_schema.tables")["table_name"].to_list()
    assert {"raw_traces", "scored_traces", "judge_cache", "eval_suite", "graded_candidates"} <= set(tables)
    for table in tables:
        assert ENDPOINT_KEY not in loop.table(f'SELECT * FROM "{table}"').write_ndjson(), table
    for path in written.values():
        assert ENDPOINT_KEY not in path.read_text()
    assert ENDPOINT_KEY not in event_log(loop)
    # nor in any file the run left beside the warehouse
    for path in loop.root.rglob("*"):
        if path.is_file() and path.suffix != ".duckdb":
            assert ENDPOINT_KEY.encode() not in path.read_bytes(), path


def test_at_ingest_the_stored_traces_and_quarantine_are_redacted(tmp_path):
    seeded = seed_traffic(tmp_path)
    base = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())["redaction"]
    config = write_config(tmp_path / "eval_loop.yaml", redaction={**base, "at_ingest": True})
    loop = new_loop(tmp_path / "loop", tmp_path / "traffic", config)
    result = loop.run(DAYS[0], select={"raw_traces", "quarantined_records"})
    raw = loop.table("SELECT * FROM raw_traces")
    quarantine = loop.table("SELECT * FROM quarantined_records")
    assert raw.height >= 140 and quarantine.height >= 1
    for frame in (raw, quarantine):
        dumped = frame.write_ndjson()
        assert leaks([*seeded, BROKEN_LINE_EMAIL], dumped) == [] and SEEDED_KEY_MARK not in dumped
    assert any("<EMAIL>" in r for r in quarantine["raw"].to_list())
    for messages in raw["input_messages"]:
        assert isinstance(json.loads(messages), list)
    [meta] = metadata(result, "raw_traces")
    assert meta["redaction"] == "at ingest"
    counts = meta["run"]  # the counts are the run's (at ingest, over every file it read)
    assert counts["redacted_email"] >= 150 and counts["redacted_card"] >= 140 and counts["redacted_api_key"] >= 140
    assert set(PLACEHOLDERS) <= {k.removeprefix("redacted_") for k in counts if k.startswith("redacted_")}


def test_make_dev_binds_to_loopback_only():
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^dev:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe, "Makefile has no dev target"
    commands = recipe.group(1)
    assert "dagster dev" in commands
    assert re.search(r"(?:-h|--host)[ =]127\.0\.0\.1\b", commands)
    assert "0.0.0.0" not in makefile

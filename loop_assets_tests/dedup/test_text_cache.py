"""The compared text of a failing input is made (redacted, normalised, cut) once, then served from the warehouse."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import duckdb
import polars as pl

from loop_assets.config import LoopConfig
from loop_assets.dedup.failure_clusters import failing_texts
from loop_assets.dedup.text_cache import cached_texts, input_hashes, store_texts, text_settings_key

DAY = date(2026, 11, 16)
INPUTS = [
    "Refund order 1234, mail me at jane.doe@example.com",
    "Refund order 1234, mail me at jane.doe@example.com",  # the same input twice
    "Where   is my PARCEL?",
]


def frames() -> tuple[pl.DataFrame, pl.DataFrame]:
    ids = [f"t{i}" for i in range(len(INPUTS))]
    raw = pl.DataFrame(
        {
            "trace_id": ids,
            "day": [DAY] * len(ids),
            "app": ["support_bot"] * len(ids),
            "ts": [datetime(2026, 11, 16, 10, i, tzinfo=UTC) for i in range(len(ids))],
            "input_text": INPUTS,
            "input_messages": [json.dumps([{"role": "user", "content": text}]) for text in INPUTS],
        }
    )
    scored = pl.DataFrame(
        {"trace_id": ids, "day": [DAY] * len(ids), "severity": [0.6] * len(ids), "is_failure": [True] * len(ids)}
    )
    return raw, scored


def test_a_failing_input_is_redacted_once_and_then_served_from_the_cache(tmp_path):
    raw, scored = frames()
    config = LoopConfig()
    key = text_settings_key(config)
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        known = cached_texts(con, key, input_hashes(raw["input_text"]))
        assert known.height == 0
        first = failing_texts(raw, scored, config, known)
        assert first["text"].to_list()[0] == "refund order 1234, mail me at <email>"  # redacted, normalised
        assert store_texts(con, key, first, known) == 2  # two distinct inputs
        stored = con.execute("SELECT string_agg(text, ' ') FROM text_cache").fetchone()[0]
        assert "jane.doe" not in stored  # only the redacted text is kept

        known = cached_texts(con, key, input_hashes(raw["input_text"]))
        assert known.height == 2 and failing_texts(raw, scored, config, known).equals(first)
        assert store_texts(con, key, first, known) == 0
        # what the cache holds is used as it is: redaction did not run again
        doctored = known.with_columns(text=pl.lit("from the cache"))
        assert set(failing_texts(raw, scored, config, doctored)["text"]) == {"from the cache"}
        assert failing_texts(raw, scored, config).equals(first)  # and without a cache, the same rows


def test_other_redaction_settings_or_cut_make_their_own_texts():
    key = text_settings_key(LoopConfig())
    assert text_settings_key(LoopConfig.model_validate({"embedding": {"max_chars": 50}})) != key
    assert text_settings_key(LoopConfig.model_validate({"redaction": {"entities": ["email"]}})) != key
    assert text_settings_key(LoopConfig.model_validate({"embedding": {"batch_size": 8}})) == key

"""PII and secret redaction (loop_assets/redaction.py) on two generated test sets (the first, and a held-out
one of the shapes issue 16 found leaking): recall per type, in the text as written and in the text as
embedded, precision on look-alikes, idempotence, JSON messages, configuration, frames, and that it runs
offline."""

from __future__ import annotations

import json
import socket
import time
import unicodedata
from collections import Counter, defaultdict

import polars as pl
import pytest

from loop_assets.config import ConfigError, LoopConfig, RedactionConfig, load_config
from loop_assets.dedup.text import normalised_text
from loop_assets.redaction import (
    DEFAULT_PHONE_REGIONS,
    PLACEHOLDERS,
    Redactor,
    count_metadata,
    redact_frame,
    redact_frame_with_counts,
    redact_text,
    redactor,
)
from loop_assets.tables import SIGNAL
from loop_assets_tests.pii_corpus import (
    HELD_OUT_NOT_PII,
    HELD_OUT_TYPES,
    NOT_PII,
    TYPES,
    corpus,
    fullwidth,
    held_out,
    iban_check_digits,
    luhn_valid,
)

RECALL_FLOOR = 0.99


@pytest.fixture(scope="module")
def samples():
    return corpus(seed=7, per_type=220)


@pytest.fixture(scope="module")
def redacted(samples):
    started = time.perf_counter()
    out = [redact_text(s.text) for s in samples]
    elapsed = time.perf_counter() - started
    print(f"\nredaction throughput on the PII test set: {len(samples) / elapsed:.0f} texts/s")
    return out


def test_the_test_set_is_large_varied_and_valid(samples):
    by_type = defaultdict(list)
    for s in samples:
        by_type[s.type].append(s)
    assert {t: len(v) >= 200 for t, v in by_type.items()} == dict.fromkeys(TYPES, True)
    cards = [s.value.replace(" ", "").replace("-", "") for s in by_type["card"]]
    assert all(luhn_valid(c) for c in cards) and len({len(c) for c in cards}) >= 5  # 13 to 19 digits
    ibans = [s.value.replace(" ", "") for s in by_type["iban"]]
    assert all(iban_check_digits(i[:2], i[4:]) == i[2:4] for i in ibans) and len({i[:2] for i in ibans}) >= 12
    assert sum(":" in s.value for s in by_type["ip"]) >= 100  # IPv6 as well as IPv4
    phones = [s.value for s in by_type["phone"]]
    assert len({p.split()[0] for p in phones if p.startswith("+")}) >= 15  # country codes
    assert sum(not p.startswith("+") for p in phones) >= 50  # national formats
    secrets = " ".join(s.text for s in by_type["secret"])
    for marker in ("sk-proj-", "sk-ant-", "AKIA", "ghp_", "github_pat_", "eyJ", "earer ", "://"):
        assert marker in secrets


def test_recall_is_at_least_99_percent_for_every_type(samples, redacted):
    hits, totals, misses = Counter(), Counter(), defaultdict(list)
    for sample, (text, _) in zip(samples, redacted, strict=True):
        totals[sample.type] += 1
        if text == sample.expected:  # the value, and only the value, became its placeholder
            hits[sample.type] += 1
        else:
            misses[sample.type].append((sample.text, text))
    recall = {t: hits[t] / totals[t] for t in TYPES}
    print("\nrecall per type:", {t: round(r, 4) for t, r in recall.items()})
    assert all(r >= RECALL_FLOOR for r in recall.values()), {t: misses[t][:3] for t in TYPES if misses[t]}


def test_no_seeded_value_survives(samples, redacted):
    leaked = [s.value for s, (text, _) in zip(samples, redacted, strict=True) if s.value in text]
    assert len(leaked) <= 0.01 * len(samples), leaked[:5]


def test_counts_name_the_kind(samples, redacted, held, held_redacted):
    kinds = Counter()
    for _, counts in redacted + held_redacted:
        kinds.update(counts)
    assert set(kinds) == set(PLACEHOLDERS)  # every kind, secrets per kind
    assert kinds["email"] >= 200 and kinds["api_key"] >= 250 and kinds["jwt"] >= 40
    assert kinds["ssn"] >= 20 and kinds["passport"] >= 20 and kinds["private_key"] >= 20
    assert kinds["date_of_birth"] >= 20


@pytest.mark.parametrize("text", NOT_PII)
def test_lookalikes_are_left_alone(text):
    assert redact_text(text) == (text, {})


def test_redacting_twice_is_redacting_once(redacted, held_redacted):
    for text, _ in redacted + held_redacted:
        assert redact_text(text) == (text, {})
    # a bare number counts after a phone word; a redacted number before it does not change that
    assert redact_text("Mobile: +1 415 555 2671 Desk: 5403926876")[0] == "Mobile: <PHONE> Desk: <PHONE>"
    assert redact_text("Mobile: <PHONE> Desk: 5403926876")[0] == "Mobile: <PHONE> Desk: <PHONE>"


# ------------------------------------------------------------------ the held-out set (issue 16)


@pytest.fixture(scope="module")
def held():
    return held_out(seed=11)


@pytest.fixture(scope="module")
def held_redacted(held):
    started = time.perf_counter()
    out = [redact_text(s.text) for s in held]
    print(f"\nredaction throughput on the held-out set: {len(held) / (time.perf_counter() - started):.0f} texts/s")
    return out


def _embedded(text: str) -> str:
    """The text as the dedup step embeds it (NFKC, lower case, whitespace collapsed)."""
    return pl.select(normalised_text(pl.lit(text), 100_000)).item()


def test_the_held_out_set_covers_every_shape(held):
    variants = {(s.type, s.variant) for s in held}
    assert {t for t, _ in variants} == set(HELD_OUT_TYPES) and len(held) >= 500
    for shape in ("fullwidth", "lowercase", "diners_14", "dotted", "maestro_12", "jcb_15", "label_glued", "pem"):
        assert any(v == shape for _, v in variants), shape
    texts = " ".join(s.text for s in held)
    for marker in ("PGPASSWORD=", "AccountKey=", "SecretAccessKey", "hooks.slack.com", "whsec_", "SG.", "bearer token"):
        assert marker in texts, marker


def test_held_out_recall_is_at_least_99_percent_for_every_type(held, held_redacted):
    hits, totals, misses = Counter(), Counter(), defaultdict(list)
    for sample, (text, _) in zip(held, held_redacted, strict=True):
        totals[sample.type] += 1
        if text == sample.expected:
            hits[sample.type] += 1
        else:
            misses[sample.type].append((sample.variant, sample.text, text))
    recall = {t: hits[t] / totals[t] for t in HELD_OUT_TYPES}
    print("\nheld-out recall per type:", {t: round(r, 4) for t, r in recall.items()})
    assert all(r >= RECALL_FLOOR for r in recall.values()), {t: misses[t][:3] for t in misses}


def test_no_held_out_value_reaches_the_embedded_text(held, held_redacted):
    leaked = [
        (s.type, s.variant, s.value)
        for s, (text, _) in zip(held, held_redacted, strict=True)
        if _embedded(s.value) in _embedded(text)
    ]
    assert leaked == []


def test_fullwidth_values_are_redacted_where_they_stand_and_the_rest_keeps_its_form():
    text = f"カード {fullwidth('4111 1111 1111 1111')}、メール {fullwidth('ana.lima@example.com')}、ＯＫ"
    out, counts = redact_text(text)
    assert out == "カード <CARD>、メール <EMAIL>、ＯＫ" and counts == {"card": 1, "email": 1}
    assert _embedded(out) == unicodedata.normalize("NFKC", out).lower()
    # neither do zero-width characters, en dashes (NFKC keeps both) or digits of another script
    assert redact_text("card 4111\u200b1111\u200b1111\u200b1111 ok")[0] == "card <CARD> ok"
    assert redact_text("card 4111–1111–1111–1111, call ٤١٥٥٥٥٢٦٧١")[0] == "card <CARD>, call <PHONE>"


def test_a_json_value_is_redacted_by_the_secret_its_key_names():
    document = {"db_password": "Sup3rSecret!", "SecretAccessKey": "wJalrXUtnFEMI", "max_tokens": 100, "user": "bob"}
    out, counts = redact_text(json.dumps(document))
    assert json.loads(out) == {**document, "db_password": "<PASSWORD>", "SecretAccessKey": "<API_KEY>"}
    assert counts == {"password": 1, "api_key": 1} and redact_text(out) == (out, {})
    assert redact_text('{"token_type": "Bearer", "password": "wrong"}')[1] == {}  # not names of secrets, not secrets


@pytest.mark.parametrize("text", HELD_OUT_NOT_PII)
def test_held_out_lookalikes_are_left_alone(text):
    assert redact_text(text) == (text, {})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # issue 16's reproduction
        ("card ４１１１ １１１１ １１１１ １１１１", "card <CARD>"),
        ("my password is CorrectHorseBatteryStaple", "my password is <PASSWORD>"),
        ("iban de89 3704 0044 0532 0130 00", "iban <IBAN>"),
        ("iban gb24 onyj 7129 0574 3912 58 and more", "iban <IBAN> and more"),
        ("WHY DOES BE34578526146441 FAIL", "WHY DOES <IBAN> FAIL"),
        # the IP rule: an address is redacted wherever it stands, except right after a version word
        ("connect to 10.0.0.1 and ping 192.168.1.20.", "connect to <IP> and ping <IP>."),
        ("firmware 1.2.3.4 on host 10.0.0.1", "firmware 1.2.3.4 on host <IP>"),
        ("a[1::2] but fe80::1 and ::ffff:10.0.0.1", "a[1::2] but <IP> and <IP>"),
        # SSNs: grouped anywhere, nine bare digits only after an SSN word
        ("order 219099999; SSN 078-05-1121, ssn: 219099998", "order 219099999; SSN <SSN>, ssn: <SSN>"),
        ("passport no. X1234567 and passport 512345678", "passport no. <PASSPORT> and passport <PASSPORT>"),
        ("invoice 2024-000123, call 2024-000123", "invoice 2024-000123, call <PHONE>"),
        ("Fax: 540-392-6876-Fax", "Fax: <PHONE>-Fax"),
        ("Password=Sup3r@Secret; and the password: hunter22.", "Password=<PASSWORD>; and the password: <PASSWORD>."),
        # beyond the list
        ("mysql --password Hunter2024 -h db; pass: Winter2025!", "mysql --password <PASSWORD> -h db; pass: <PASSWORD>"),
        ("Authorization: Basic dXNlcjpodW50ZXIyMg==", "Authorization: Basic <PASSWORD>"),
        ("AWS_SESSION_TOKEN=FwoGZXIvYXdzEJr//wEaDHk3 ok", "AWS_SESSION_TOKEN=<API_KEY> ok"),
        ("twilio SK0123456789abcdef0123456789abcdef", "twilio <API_KEY>"),
        ("DOB: 1990-04-12; I was born on April 12th, 1990", "DOB: <DATE_OF_BIRTH>; I was born on <DATE_OF_BIRTH>"),
        ("my birthday is coming and the meeting is 2026-11-16", "my birthday is coming and the meeting is 2026-11-16"),
    ],
)
def test_held_out_examples(text, expected):
    assert redact_text(text)[0] == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abc123DEF456ghi789", "Authorization: Bearer <BEARER_TOKEN>"),
        ("DATABASE_URL=postgres://app:Sup3r-S3cret@db.internal:5432/app", None),
        ("use sk-proj-EVALLOOPTESTKEY0123456789abcdefXYZ for the call", "use <API_KEY> for the call"),
        ("aws_access_key_id = AKIAIOSFODNN7EXAMPLE", "aws_access_key_id = <API_KEY>"),
        ("password=hunter2!! and api_key: 9f8e7d6c5b4a3210", "password=<PASSWORD> and api_key: <API_KEY>"),
        ("call me on 4155552671 please", "call me on <PHONE> please"),
        ("epoch 1763290325 ms", "epoch 1763290325 ms"),  # bare digits need a phone word before them
        ("(+44 20 7946 0018)", "(<PHONE>)"),  # brackets stay
        ("IBAN DE89 3704 0044 0532 0130 00.", "IBAN <IBAN>."),  # not a card inside an IBAN
        ("server at 2001:db8::8a2e:370:7334, slice x[::2]", "server at <IP>, slice x[::2]"),
    ],
)
def test_examples(text, expected):
    out, _ = redact_text(text)
    if expected is None:
        assert out == "DATABASE_URL=postgres://app:<PASSWORD>@db.internal:5432/app"
    else:
        assert out == expected


def test_json_messages_stay_valid_json_in_their_own_style():
    messages = [
        {"role": "system", "content": "You are the support bot."},
        {"role": "user", "content": "I'm jane.doe@example.com, card 4111 1111 1111 1111 was charged twice"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"phone": "+14155552671"}'},
                }
            ],
        },
        {"role": "user", "content": [{"type": "text", "text": "my key sk-ant-api03-abcdefghijklmnop1234567890"}]},
    ]
    for separators in ((",", ":"), (", ", ": ")):
        original = json.dumps(messages, separators=separators, ensure_ascii=False)
        out, counts = redact_text(original)
        parsed = json.loads(out)
        assert counts == {"email": 1, "card": 1, "phone": 1, "api_key": 1}
        assert out == json.dumps(parsed, separators=separators, ensure_ascii=False)  # same style
        assert parsed[1]["content"] == "I'm <EMAIL>, card <CARD> was charged twice"
        assert json.loads(parsed[2]["tool_calls"][0]["function"]["arguments"]) == {"phone": "<PHONE>"}
        assert parsed[3]["content"][0]["text"] == "my key <API_KEY>"
        assert [m["role"] for m in parsed] == [m["role"] for m in messages]
    clean = json.dumps([{"role": "user", "content": "Where is order 42?"}], indent=2)
    assert redact_text(clean) == (clean, {})  # untouched, byte for byte


def test_configuration_chooses_what_is_redacted(tmp_path):
    assert LoopConfig().redaction == RedactionConfig()
    assert RedactionConfig().enabled and not RedactionConfig().at_ingest
    assert tuple(RedactionConfig().phone_regions) == DEFAULT_PHONE_REGIONS
    text = "mail a.b@example.com or call +44 20 7946 0018 with sk-proj-ABCDEFGHIJKLMNOP1234567890"
    assert redact_text(text, RedactionConfig(enabled=False)) == (text, {})
    only_email, counts = redact_text(text, RedactionConfig(entities=["email"]))
    assert counts == {"email": 1} and "+44 20 7946 0018" in only_email and "sk-proj-" in only_email
    secrets_only, counts = redact_text(text, RedactionConfig(entities=["secret"]))
    assert counts == {"api_key": 1} and "a.b@example.com" in secrets_only
    path = tmp_path / "bad.yaml"
    path.write_text("redaction: {phone_regions: [US, XX]}\n")
    with pytest.raises(ConfigError, match=r"redaction\.phone_regions.*XX"):
        load_config(path)
    only_ssn, counts = redact_text("SSN 219-09-9999, mail a.b@example.com", RedactionConfig(entities=["ssn"]))
    assert only_ssn == "SSN <SSN>, mail a.b@example.com" and counts == {"ssn": 1}
    path.write_text("redaction: {entities: [email, name]}\n")
    with pytest.raises(ConfigError, match=r"redaction\.entities"):
        load_config(path)


def test_redact_frame_redacts_each_distinct_value_once_and_counts_rows():
    frame = pl.DataFrame(
        {
            "text": ["mail a@example.com", "fine", None, "mail a@example.com", "call +44 20 7946 0018"],
            "other": ["a@example.com"] * 5,
            "signals": [
                [{"scorer": "provider_error", "version": "1", "value": "bad key sk-proj-ABCDEFGH12345678ijklmnop"}],
                [],
                None,
                [{"scorer": "latency", "version": "1", "value": None, "threshold": "8000"}],
                [],
            ],
        },
        schema={"text": pl.String, "other": pl.String, "signals": pl.List(SIGNAL)},
    )
    out, counts = redact_frame_with_counts(frame, ["text", "signals", "missing_column"])
    assert out["text"].to_list() == ["mail <EMAIL>", "fine", None, "mail <EMAIL>", "call <PHONE>"]
    assert out["other"].to_list() == frame["other"].to_list()  # not asked for
    assert out["signals"][0].to_list()[0]["value"] == "bad key <API_KEY>"
    assert out.schema == frame.schema
    assert counts == {"email": 2, "phone": 1, "api_key": 1}
    assert count_metadata(counts)["redacted_email"] == 2 and count_metadata(counts)["redacted_jwt"] == 0
    assert redact_frame(frame, ["text"], RedactionConfig(enabled=False)).equals(frame)
    assert redact_frame(frame.clear(), ["text"]).height == 0


def test_presidio_runs_offline_with_pattern_recognisers_only(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access attempted")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    fresh = Redactor(("email", "phone", "card", "iban", "ip", "secret"), ("US", "GB"))
    assert fresh.redact("write to x.y@corp.example.co.uk") == "write to <EMAIL>"
    engine = fresh.engine
    assert type(engine.nlp_engine).__name__ == "NoOpNlpEngine"
    assert {type(r).__module__.split(".")[0] for r in engine.registry.recognizers} <= {
        "presidio_analyzer",
        "loop_assets",
    }
    assert redactor() is redactor()  # built once per process


def test_promote_writes_no_pii_into_the_suite():
    from loop_assets.promote.promotion import promote
    from loop_assets.tables import empty
    from loop_assets_tests.promote.test_promotion import graded, raw, scored

    leaky = "mail ana.lima@example.com.br or +55 11 2345-6789, card 5555 5555 5555 4444"
    messages = json.dumps([{"role": "user", "content": leaky}])
    signal = {
        "scorer": "provider_error",
        "version": "1",
        "value": "quota for ana.lima@example.com.br",
        "threshold": "x",
    }
    traces = raw(1, corrected=f"Refund sent to {leaky}").with_columns(
        pl.lit(messages).alias("input_messages"), pl.lit(leaky).alias("input_text")
    )
    signals = scored(1).with_columns(pl.Series("failure_signals", [[signal]], dtype=pl.List(SIGNAL)))
    cases = promote(graded(["promote"]), traces, signals, empty("eval_suite"), LoopConfig(), "run", "d", "m")
    row = cases.row(0, named=True)
    dumped = cases.drop("embedding").write_ndjson()
    assert "ana.lima" not in dumped and "2345-6789" not in dumped and "5555 5555" not in dumped
    assert row["input_text"] == "mail <EMAIL> or <PHONE>, card <CARD>"
    assert json.loads(row["input_messages"]) == [{"role": "user", "content": row["input_text"]}]
    assert row["expected_output"] == f"Refund sent to {row['input_text']}"
    assert json.loads(row["grading"])["checks"][-1]["reference"] == row["expected_output"]
    assert row["label"].endswith("mail <EMAIL> or <PHONE>, card <CARD>")
    assert row["failure_signals"][0]["value"] == "quota for <EMAIL>"
    off = LoopConfig(redaction=RedactionConfig(enabled=False))
    kept = promote(graded(["promote"]), traces, signals, empty("eval_suite"), off, "run", "d", "m")
    assert kept["input_text"][0] == leaky  # disabled means untouched

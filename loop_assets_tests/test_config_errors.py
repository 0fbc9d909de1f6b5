"""Configuration mistakes: a clear message naming the key and the fix, never a secret, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loop_assets.cli import main
from loop_assets.config import ConfigError, load_config

SECRET = "sk-proj-Zx81QwErTyUiOp4455667788"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "eval_loop.yaml"
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    return str(err.value)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (f'judge: {{base_url: "https://bob:{SECRET}@api.example.com/v1", model: m}}', "judge.base_url"),
        (
            f'model_endpoint: {{base_url: "https://api.example.com/v1", model: m, timeout_s: "{SECRET}"}}',
            "model_endpoint.timeout_s",
        ),
        (f'judge: {{base_url: "{SECRET}@example", model: m}}', "judge.base_url"),
        (f'judge: {{base_url: "https://api.example.com/v1", model: m, {SECRET}: 1}}', "judge.(a key not shown)"),
        (f'judge: {{base_url: "https://api.example.com/v1", model: m, max_retries: "{SECRET}"}}', "judge.max_retries"),
        # a whole-file rule (no app has a rubric): the message must not dump the judge section with it
        (f'judge: {{base_url: "https://api.example.com/v1?key={SECRET}", model: m}}', "(top level)"),
        (f'judge: {{base_url: "https://api.example.com/v1", model: m, api_key_env: "{SECRET}"}}', "judge.api_key_env"),
    ],
)
def test_an_endpoint_mistake_names_the_key_and_never_shows_the_secret(tmp_path, text, key):
    message = error_of(tmp_path, text)
    assert f"`{key}" in message
    assert SECRET not in message and "Zx81" not in message and "bob" not in message


def test_a_yaml_syntax_error_says_where_without_quoting_the_line(tmp_path):
    message = error_of(tmp_path, f'judge:\n  base_url: "https://x/v1"\n  api_key: {SECRET}: oops\n')
    assert "line 3" in message and SECRET not in message


@pytest.mark.parametrize(
    ("text", "key", "hint"),
    [
        ("scoring: {feedback: {max_failing_rating: -1}}", "scoring.feedback", "outside the rating_scale [1, 5]"),
        ("scoring: {feedback: {max_failing_rating: 5}}", "scoring.feedback", "else every rating fails"),
        ("scoring: {feedback: {rating_scale: [5, 1]}}", "scoring.feedback", "lowest < highest"),
        (
            "apps: {survey: {feedback: {max_failing_rating: 7}}}",
            "apps.survey.feedback.max_failing_rating",
            "outside the rating_scale [1, 5] (from scoring.feedback)",
        ),
        (
            "apps: {survey: {feedback: {rating_scale: [0, 1]}}}",
            "apps.survey.feedback.rating_scale",
            "max_failing_rating 2 (from scoring.feedback) is outside the rating_scale [0, 1]",
        ),
        ("grading: {weights: {novelty: -0.5}}", "grading.weights", "finite and at least 0"),
        ("grading: {weights: {novelty: .nan}}", "grading.weights", "finite and at least 0"),
        (
            "grading: {weights: {novelty: 0, severity: 0, frequency: 0, difficulty: 1}}",
            "grading.weights",
            "all have weight 0",
        ),
        ("scoring: {severity_weights: {latency: -0.1}}", "scoring.severity_weights", "between 0 and 1"),
        (
            "scoring: {severity_weights: {provider_error: 0, empty_output: 0, truncated_output: 0, json_schema: 0, "
            "feedback: 0, latency: 0, judge: 0}}",
            "scoring.severity_weights",
            "every signal's weight is 0",
        ),
        ("apps: {x: {rubric: '  '}}", "apps.x.rubric", "must not be blank"),
    ],
)
def test_a_rating_or_weight_that_cannot_work_is_refused_with_the_fix(tmp_path, text, key, hint):
    message = error_of(tmp_path, text)
    assert f"`{key}`" in message and hint in message, message


def test_every_app_may_declare_its_own_scale(tmp_path):
    config = load_config(write(tmp_path, "apps: {survey: {feedback: {rating_scale: [1, 10], max_failing_rating: 3}}}"))
    assert config.app("survey").feedback.rating_scale == (1, 10)


# --------------------------------------------------------------------------- the command line


def _eval_loop(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", "import sys; from loop_assets.cli import main; sys.exit(main(sys.argv[1:]))"]
    return subprocess.run([*command, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout)


def test_a_config_error_is_one_message_on_stderr_with_exit_code_2(tmp_path):
    config = write(tmp_path, f'judge: {{base_url: "https://bob:{SECRET}@api.example.com/v1", model: m}}')
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    done = _eval_loop("materialize", env={"EVAL_LOOP_CONFIG": str(config), "EVAL_LOOP_INCOMING": str(incoming)})
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and SECRET not in done.stderr + done.stdout
    assert done.stderr.startswith("eval-loop materialize: invalid eval-loop configuration in ")
    assert "`judge.base_url`: must not carry credentials" in done.stderr


def test_summary_with_a_broken_config_says_so_in_one_message(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EVAL_LOOP_CONFIG", str(write(tmp_path, "scoring: {feedback: {max_failing_rating: -1}}")))
    assert main(["summary"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("eval-loop summary: invalid eval-loop configuration") and "`scoring.feedback`" in err


def test_stats_against_a_held_lock_prints_one_clear_line(tmp_path):
    import duckdb

    warehouse = tmp_path / "w.duckdb"
    duckdb.connect(str(warehouse)).close()
    hold = f"import duckdb, time; c = duckdb.connect({str(warehouse)!r}); print('held', flush=True); time.sleep(120)"
    holder = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        done = _eval_loop("stats", env={"EVAL_LOOP_WAREHOUSE": str(warehouse)})
        assert time.monotonic() - started < 60
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("eval-loop stats: cannot open the warehouse")


def test_export_with_a_file_name_too_long_prints_one_clear_line(tmp_path, monkeypatch, capsys):
    import duckdb

    from loop_assets.warehouse import ensure_tables

    warehouse = tmp_path / "w.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        ensure_tables(con)
    monkeypatch.setenv("EVAL_LOOP_WAREHOUSE", str(warehouse))
    name = "s" * 300 + ".jsonl"
    assert main(["export", "--out-dir", str(tmp_path / "out"), "--out", name]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "file name of 306 bytes" in err[0] and "at most 215 bytes" in err[0]
    assert main(["export", "--out-dir", str(tmp_path / "out"), "--out", "s" * 215]) == 0

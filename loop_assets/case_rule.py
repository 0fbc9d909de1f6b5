"""A case's rule: the checks a replayed answer must pass, as PROMOTE writes it and EVALUATE reads it.

Stored as JSON in `eval_suite.grading` ({"pass": "all" | "any", "checks": [...]}); these models are the
one definition of what a rule may hold. A check keeps every key it was given (unknown keys included),
so a rule read and written again is the same JSON.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

KNOWN_BAD_MAX_SIMILARITY = 0.9
"""not_known_bad: a replay at least this similar (word-token difflib ratio) to the known bad answer fails."""


class RuleError(ValueError):
    """The rule cannot be read; the message names the check and what is wrong."""


def _positive_number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a number, got {value!r}")
    return value


def _strings(value: Any) -> bool:
    return isinstance(value, str) or (
        isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)
    )


class _Check(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)


class NoError(_Check):
    """The answer came without an error."""

    type: Literal["no_error"]


class NonEmpty(_Check):
    """The answer has text."""

    type: Literal["non_empty"]


class FinishReason(_Check):
    """The finish reason is not (`not`) or is one of (`in`) the given ones."""

    type: Literal["finish_reason"]
    not_: str | list[str] | None = Field(default=None, alias="not")
    in_: str | list[str] | None = Field(default=None, alias="in")

    @model_validator(mode="after")
    def _one_given(self) -> FinishReason:
        if not _strings(self.not_ if self.not_ is not None else self.in_):
            raise ValueError("needs 'not' or 'in': a finish reason or a list of them")
        return self


class JsonSchema(_Check):
    """The answer parses as JSON and satisfies `schema`."""

    type: Literal["json_schema"]
    schema_: dict[str, Any] = Field(alias="schema")

    @field_validator("schema_")
    @classmethod
    def _valid_schema(cls, schema: dict[str, Any]) -> dict[str, Any]:
        from jsonschema.exceptions import SchemaError
        from jsonschema.validators import validator_for

        try:
            validator_for(schema).check_schema(schema)
        except SchemaError as exc:
            raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
        return schema


class Latency(_Check):
    """The answer came within `max_ms` milliseconds."""

    type: Literal["latency"]
    max_ms: float

    @field_validator("max_ms", mode="before")
    @classmethod
    def _positive(cls, value: Any) -> Any:
        if not _positive_number(value) > 0:
            raise ValueError(f"needs a positive number 'max_ms', got {value!r}")
        return value


class Exact(_Check):
    """The answer is `expected` (or `value`), compared on normalised text."""

    type: Literal["exact"]
    expected: str | None = None
    value: str | None = None

    @model_validator(mode="after")
    def _target(self) -> Exact:
        if not isinstance(self.expected if self.expected is not None else self.value, str):
            raise ValueError("needs 'expected' or 'value': a string")
        return self


class Contains(_Check):
    """The answer contains `value` (or `expected`): a string, or every string of a list."""

    type: Literal["contains"]
    value: str | list[str] | None = None
    expected: str | list[str] | None = None

    @model_validator(mode="after")
    def _target(self) -> Contains:
        if not _strings(self.value if self.value is not None else self.expected):
            raise ValueError("needs 'expected' or 'value': a string or list")
        return self


class NotKnownBad(_Check):
    """The known bad answer (`output`) does not come back, exactly or nearly (< `max_similarity`)."""

    type: Literal["not_known_bad"]
    output: str
    max_similarity: float = KNOWN_BAD_MAX_SIMILARITY

    @field_validator("output")
    @classmethod
    def _not_blank(cls, output: str) -> str:
        if not output.strip():
            raise ValueError("needs a non-empty 'output' string (the known bad answer)")
        return output

    @field_validator("max_similarity", mode="before")
    @classmethod
    def _in_range(cls, value: Any) -> Any:
        if not 0 < _positive_number(value) <= 1:
            raise ValueError(f"'max_similarity' must be a number in (0, 1], got {value!r}")
        return value


class Rubric(_Check):
    """A judge scores the answer against `rubric` (with `reference` when known); passes at `min_score`."""

    type: Literal["rubric"]
    rubric: str
    reference: str | None = None
    min_score: float = 0.5

    @field_validator("rubric")
    @classmethod
    def _not_blank(cls, rubric: str) -> str:
        if not rubric.strip():
            raise ValueError("needs a non-empty 'rubric' string")
        return rubric

    @field_validator("min_score", mode="before")
    @classmethod
    def _in_range(cls, value: Any) -> Any:
        if not 0 <= _positive_number(value) <= 1:
            raise ValueError(f"'min_score' must be a number in [0, 1], got {value!r}")
        return value


Check = Annotated[
    NoError | NonEmpty | FinishReason | JsonSchema | Latency | Exact | Contains | NotKnownBad | Rubric,
    Field(discriminator="type"),
]
CHECK_TYPES = ("no_error", "non_empty", "finish_reason", "json_schema", "latency", "exact", "contains",
               "not_known_bad", "rubric")  # fmt: skip


class CaseRule(BaseModel):
    """`pass`: every check must pass (all) or one (any); `checks`: at least one."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    pass_: Literal["all", "any"] = Field(default="all", alias="pass")
    checks: list[Check] = Field(min_length=1)

    def check_dicts(self) -> list[dict[str, Any]]:
        """The checks as the JSON objects they were given as (keys as written, nothing added)."""
        return [check.model_dump(by_alias=True, exclude_unset=True) for check in self.checks]

    def to_json(self) -> str:
        return json.dumps({"pass": self.pass_, "checks": self.check_dicts()}, sort_keys=True)


def read_rule(grading: str | dict[str, Any]) -> CaseRule:
    """The CaseRule in `grading` (JSON text or an object), or RuleError naming what is wrong."""
    if isinstance(grading, str):
        try:
            grading = json.loads(grading)
        except json.JSONDecodeError as exc:
            raise RuleError(f"grading is not valid JSON: {exc.msg} at char {exc.pos}") from None
    if not isinstance(grading, dict):
        raise RuleError(f"grading must be a JSON object, got {type(grading).__name__}")
    try:
        return CaseRule.model_validate(grading)
    except ValidationError as exc:
        raise RuleError(_explain(exc.errors()[0], grading)) from None


def make_rule(checks: list[dict[str, Any]], mode: Literal["all", "any"] = "all") -> str:
    """The JSON of a rule with these checks, validated as EVALUATE will read it."""
    return read_rule({"pass": mode, "checks": checks}).to_json()


def _explain(error: dict[str, Any], grading: dict[str, Any]) -> str:
    loc = error["loc"]
    if loc[:1] == ("pass",):
        return f"grading 'pass' must be 'all' or 'any', got {grading.get('pass')!r}"
    if loc == ("checks",):
        return "grading 'checks' must be a non-empty list"
    index = loc[1]
    check = grading["checks"][index]
    if error["type"] in ("union_tag_invalid", "union_tag_not_found", "model_attributes_type"):
        got = check.get("type") if isinstance(check, dict) else check
        return f"check {index + 1}: unknown type {got!r}; known types are {list(CHECK_TYPES)}"
    field = ".".join(str(part) for part in loc[3:])
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "missing":
        message = f"needs '{field}'"
    elif field and field not in message:
        message = f"'{field}': {message}"
    return f"check {index + 1} ({check.get('type')}): {message}"

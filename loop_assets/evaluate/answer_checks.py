"""Grade one model output against an eval case's grading rule: pass, fail, or unknown.

A case's `grading` (built by `promotion.grading_rule`) is JSON:

    {"pass": "all", "checks": [{"type": "no_error"}, {"type": "json_schema", "schema": {...}}, ...]}

Each check has one of three outcomes: `pass`, `fail`, or `unknown` (the check cannot be decided from
what is known: a rubric without a judge, a latency budget without a recorded latency, ...).

Check types (keys besides `type`):

- `no_error`: fails when the output carries an error.
- `non_empty`: fails when the output text is missing or blank.
- `finish_reason` (`not`: a reason or a list of reasons, e.g. "length"; or `in`: the allowed reasons):
  fails on a forbidden (or not allowed) finish reason, compared case-insensitively; unknown when no
  finish reason is known.
- `json_schema` (`schema`): the text must be a JSON document that satisfies the schema (the same
  helpers as the `json_schema` scorer: a Markdown-fenced answer is not JSON); fails without text.
- `latency` (`max_ms`): fails when `latency_ms > max_ms`; unknown when no latency is known.
- `exact` (`expected`, or `value`; optional `ignore_case`, `strip` default true): the text equals it.
- `contains` (`value`, or `expected`: a string or a list of strings that must all occur; optional
  `ignore_case`): the text contains it.
- `not_known_bad` (`output`: an answer known to be bad, e.g. the one a user rated down; optional
  `max_similarity`, default 0.9): fails when the text is that answer again, exactly or nearly:
  `known_bad_similarity(text, output) >= max_similarity`. Similarity is difflib's
  `SequenceMatcher.ratio` over the word tokens (`\\w+` runs) of both texts after NFKC and case
  folding, so case, spacing and punctuation never count, and one changed word in n makes about
  1 - 1/n: with 0.9, a text of fewer than 10 words must come back word for word to fail. (Texts
  with no word at all are compared whole.) A blank text passes (`non_empty` is the check for that).
  The suite stores answers redacted: when `output` holds a placeholder (`<PHONE>`, `<EMAIL>`, ...),
  the text is also compared after redaction (every entity), so leaking such a value again fails.
- `rubric` (`rubric`, optional `reference`, optional `min_score` default 0.5): the optional judge
  scores the text against the rubric (and the reference answer); pass when score >= min_score. No
  judge, a judge that abstains (None) or errors: unknown. No output text: fail, without asking.

The case verdict combines the checks by the rule's `pass`:

- `all` (the default): fail if any check fails; else unknown if any is unknown; else pass.
- `any`: pass if any check passes; else unknown if any is unknown; else fail.

A rule that cannot be read (not JSON, unknown check type, missing key) makes the verdict unknown
with the problem as its reason: a broken rule is a fact about the suite, not about the model.

How unknown verdicts count in pass rates and difficulty is decided by the callers (`eval_run`,
`difficulty`), not here.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal, Protocol

from jsonschema.exceptions import SchemaError
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

from loop_assets.capture.scoring import json_output_error, schema_validator
from loop_assets.case_rule import KNOWN_BAD_MAX_SIMILARITY, RuleError, read_rule
from loop_assets.judge_reply import MAX_SCORE, MIN_SCORE, UnreadableReply, read_judge_reply
from loop_assets.messages import message_text

Outcome = Literal["pass", "fail", "unknown"]
MAX_REASON_CHARS = 300
MAX_COMPARED_WORDS = 4000  # longer answers are compared on their first 4,000 words (equal texts always match)
_WORD = re.compile(r"\w+")

# A judge's answer: a score in [0, 1] (a bool counts as 1 / 0), None to abstain, or (score, reason).
JudgeScore = float | bool | None | tuple[float | bool | None, str]


class Judge(Protocol):
    """Scores an answer against a rubric, keyword arguments only."""

    def __call__(
        self, *, rubric: str, output: str, reference: str | None, messages: list[dict] | None
    ) -> JudgeScore: ...


@dataclass(frozen=True)
class Output:
    """One model answer to grade."""

    text: str | None
    finish_reason: str | None = None
    latency_ms: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class CheckResult:
    name: str  # the check type, suffixed #2, #3 ... when a rule repeats a type
    outcome: Outcome
    reason: str | None = None  # why it failed or is unknown (None for a pass)
    score: float | None = None  # a rubric's judge score


@dataclass(frozen=True)
class CaseVerdict:
    passed: bool | None  # None: unknown
    failed_checks: list[str] = field(default_factory=list)
    unknown_checks: list[str] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)  # check name -> reason, for failed and unknown checks
    checks: tuple[CheckResult, ...] = ()
    judge_score: float | None = None  # the (first) rubric score, when a judge gave one

    @property
    def outcome(self) -> Outcome:
        return "unknown" if self.passed is None else ("pass" if self.passed else "fail")

    def reason_text(self) -> str | None:
        """All reasons on one line, for a table cell."""
        return "; ".join(f"{k}: {v}" for k, v in self.reasons.items()) or None


# --------------------------------------------------------------------------- rule parsing


def parse_rule(grading_json: str | dict) -> tuple[str, list[dict]]:
    """(combine mode, checks as given) of a case's rule (`case_rule.CaseRule`), or RuleError naming what is wrong."""
    rule = read_rule(grading_json)
    return rule.pass_, rule.check_dicts()


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _contains_target(check: dict) -> Any:
    return check.get("value", check.get("expected"))


@lru_cache(maxsize=256)
def _validator(schema_json: str) -> Validator:
    schema = json.loads(schema_json)
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        raise RuleError(f"json_schema: not a valid JSON Schema: {exc.message}") from None
    return schema_validator(schema)


# --------------------------------------------------------------------------- checks


def _blank(text: str | None) -> bool:
    return text is None or not text.strip()


def _cut(text: str) -> str:
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"


def answer_words(text: str) -> list[str]:
    """The word tokens two answers are compared on: NFKC, case-folded, punctuation and spacing dropped."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def known_bad_similarity(text: str, known_bad: str, at_least: float = 0.0) -> float:
    """How close `text` is to `known_bad`, in [0, 1] (1: the same words in the same order).

    difflib's ratio over `answer_words` (2 x matched words / total words). When `at_least` is given
    and a cheap upper bound is already below it, that bound is returned instead of the exact ratio.
    """
    a, b = answer_words(text), answer_words(known_bad)
    if a == b:
        if a:
            return 1.0
        folded = [" ".join(unicodedata.normalize("NFKC", t).casefold().split()) for t in (text, known_bad)]
        return 1.0 if folded[0] == folded[1] else 0.0
    if not a or not b:
        return 0.0
    matcher = difflib.SequenceMatcher(None, a[:MAX_COMPARED_WORDS], b[:MAX_COMPARED_WORDS], autojunk=False)
    for bound in (matcher.real_quick_ratio, matcher.quick_ratio):
        value = bound()
        if value < at_least:
            return value
    return matcher.ratio()


@lru_cache(maxsize=1)
def _placeholders() -> re.Pattern[str]:
    from loop_assets.redaction import PLACEHOLDERS

    return re.compile("|".join(re.escape(p) for p in PLACEHOLDERS.values()))


def _not_known_bad(check: dict, text: str | None) -> CheckResult:
    if _blank(text):
        return CheckResult("not_known_bad", "pass")
    limit = float(check.get("max_similarity", KNOWN_BAD_MAX_SIMILARITY))
    known_bad = check["output"]
    similarity = known_bad_similarity(text, known_bad, at_least=limit)
    if similarity < limit and _placeholders().search(known_bad):
        # The suite keeps answers redacted: a replay that leaks a value of the same kind again is the same answer.
        from loop_assets.redaction import redact_text

        redacted, _ = redact_text(text, json_aware=False)
        similarity = max(similarity, known_bad_similarity(redacted, known_bad, at_least=limit))
    if similarity >= limit:
        how = "exactly" if similarity == 1.0 else f"nearly: similarity {similarity:.3f} >= {limit:g}"
        return CheckResult("not_known_bad", "fail", f"the known bad answer came back ({how})")
    return CheckResult("not_known_bad", "pass")


def _check(check: dict, output: Output, judge: Judge | None, messages: list[dict] | None) -> CheckResult:
    kind = check["type"]
    text = output.text
    if kind == "no_error":
        if not _blank(output.error):
            return CheckResult(kind, "fail", _cut(f"error: {output.error.strip()}"))
        return CheckResult(kind, "pass")
    if kind == "non_empty":
        if _blank(text):
            return CheckResult(kind, "fail", "no output text" if text is None else f"blank output ({len(text)} chars)")
        return CheckResult(kind, "pass")
    if kind == "finish_reason":
        reason = (output.finish_reason or "").strip().lower()
        if not reason:
            return CheckResult(kind, "unknown", "finish reason not known")
        if "not" in check:
            forbidden = [v.strip().lower() for v in _as_list(check["not"])]
            if reason in forbidden:
                return CheckResult(kind, "fail", f"finish_reason is {reason}")
            return CheckResult(kind, "pass")
        allowed = [v.strip().lower() for v in _as_list(check["in"])]
        if reason not in allowed:
            return CheckResult(kind, "fail", f"finish_reason {reason} not in {allowed}")
        return CheckResult(kind, "pass")
    if kind == "json_schema":
        if _blank(text):
            return CheckResult(kind, "fail", "no output to validate")
        message = json_output_error(_validator(json.dumps(check["schema"], sort_keys=True)), text)
        return CheckResult(kind, "pass") if message is None else CheckResult(kind, "fail", _cut(message))
    if kind == "latency":
        latency = output.latency_ms
        if latency is None or (isinstance(latency, float) and math.isnan(latency)):
            return CheckResult(kind, "unknown", "latency not known")
        if latency > check["max_ms"]:
            return CheckResult(kind, "fail", f"latency {latency:g} ms > {check['max_ms']:g} ms")
        return CheckResult(kind, "pass")
    if kind == "exact":
        expected = check.get("expected", check.get("value"))
        got = text or ""
        if check.get("strip", True):
            got, expected = got.strip(), expected.strip()
        if check.get("ignore_case", False):
            got, expected = got.casefold(), expected.casefold()
        if got != expected:
            return CheckResult(kind, "fail", _cut(f"output differs from the expected {expected!r}"))
        return CheckResult(kind, "pass")
    if kind == "contains":
        needles = _as_list(_contains_target(check))
        hay = text or ""
        if check.get("ignore_case", False):
            hay = hay.casefold()
            missing = [n for n in needles if n.casefold() not in hay]
        else:
            missing = [n for n in needles if n not in hay]
        if missing:
            return CheckResult(kind, "fail", _cut(f"output lacks {missing}"))
        return CheckResult(kind, "pass")
    if kind == "not_known_bad":
        return _not_known_bad(check, text)
    if kind == "rubric":
        return _rubric(check, output, judge, messages)
    raise RuleError(f"unknown check type {kind!r}")  # parse_rule lets none through


def _rubric(check: dict, output: Output, judge: Judge | None, messages: list[dict] | None) -> CheckResult:
    if _blank(output.text):
        return CheckResult("rubric", "fail", "no output to judge")
    if judge is None:
        return CheckResult("rubric", "unknown", "no judge configured")
    try:
        answer = judge(rubric=check["rubric"], output=output.text, reference=check.get("reference"), messages=messages)
    except Exception as exc:
        return CheckResult("rubric", "unknown", _cut(f"judge failed: {type(exc).__name__}: {exc}"))
    note = None
    if isinstance(answer, tuple):
        answer, note = answer
    if answer is None:
        return CheckResult("rubric", "unknown", _cut("judge gave no score" + (f": {note}" if note else "")))
    if isinstance(answer, bool):
        answer = 1.0 if answer else 0.0
    if not isinstance(answer, int | float) or math.isnan(answer) or not 0 <= answer <= 1:
        return CheckResult("rubric", "unknown", _cut(f"judge score {answer!r} is not a number in [0, 1]"))
    score = float(answer)
    min_score = float(check.get("min_score", 0.5))
    if score < min_score:
        reason = f"judge score {score:g} < {min_score:g}" + (f": {note}" if note else "")
        return CheckResult("rubric", "fail", _cut(reason), score)
    return CheckResult("rubric", "pass", None, score)


# --------------------------------------------------------------------------- verdict


def _combine(mode: str, results: Sequence[CheckResult]) -> bool | None:
    outcomes = {r.outcome for r in results}
    if mode == "any":
        return True if "pass" in outcomes else (None if "unknown" in outcomes else False)
    return False if "fail" in outcomes else (None if "unknown" in outcomes else True)


def grade_output(
    grading_json: str | dict,
    output: Output,
    judge: Judge | Callable[..., JudgeScore] | None = None,
    messages: list[dict] | None = None,
) -> CaseVerdict:
    """The verdict of `output` under the case's grading rule; `messages` is the case input, for the judge."""
    try:
        mode, checks = parse_rule(grading_json)
    except RuleError as exc:
        return CaseVerdict(passed=None, unknown_checks=["grading"], reasons={"grading": _cut(str(exc))})
    results: list[CheckResult] = []
    seen: dict[str, int] = {}
    for check in checks:
        result = _check(check, output, judge, messages)
        seen[result.name] = seen.get(result.name, 0) + 1
        if seen[result.name] > 1:
            result = CheckResult(f"{result.name}#{seen[result.name]}", result.outcome, result.reason, result.score)
        results.append(result)
    scores = [r.score for r in results if r.score is not None]
    return CaseVerdict(
        passed=_combine(mode, results),
        failed_checks=[r.name for r in results if r.outcome == "fail"],
        unknown_checks=[r.name for r in results if r.outcome == "unknown"],
        reasons={r.name: r.reason for r in results if r.reason is not None},
        checks=tuple(results),
        judge_score=scores[0] if scores else None,
    )


# --------------------------------------------------------------------------- an LLM judge

JUDGE_SYSTEM = (
    "You grade an AI assistant's answer against a rubric. Reply with one JSON object and nothing else: "
    '{"score": <integer 1 to 5>, "reason": "<one sentence>"}. 5 means the answer fully satisfies the rubric, '
    "1 means it does not at all."
)


def judge_messages(rubric: str, output: str, reference: str | None, messages: list[dict] | None) -> list[dict]:
    """The chat a judge is asked: rubric, the conversation answered, a reference answer if any, the answer."""
    parts = [f"Rubric:\n{rubric}"]
    if messages:
        convo = "\n".join(
            f"{m.get('role', '?')}: {message_text(m.get('content'))}" for m in messages if isinstance(m, dict)
        )
        parts.append(f"Conversation the answer replies to:\n{convo}")
    if reference:
        parts.append(f"Reference answer (known good):\n{reference}")
    parts.append(f"Answer to grade:\n{output}")
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": "\n\n".join(parts)}]


def parse_judge_reply(text: str | None) -> tuple[float | None, str]:
    """(score in [0, 1], reason) from a judge's reply (`judge_reply.JudgeReply`, on the 1-5 scale).

    A score of 1-5 maps linearly onto 0-1 (3 -> 0.5, the default `min_score`, so 1-2 fail and 3-5
    pass, as the trace judge's default `max_failing_score` of 2). Anything else is no score (None).
    """
    try:
        reply = read_judge_reply(text)
    except UnreadableReply as exc:
        return None, _cut(str(exc))
    return round((reply.score - MIN_SCORE) / (MAX_SCORE - MIN_SCORE), 6), reply.reason


def chat_judge(client: Any, **params: Any) -> Judge:
    """A rubric judge backed by a chat-completions client (`llm_client.ChatClient`); params go to each request.

    A call error or an unreadable reply is an abstention (None), so the rubric check stays unknown.
    """

    def judge(
        *, rubric: str, output: str, reference: str | None, messages: list[dict] | None
    ) -> tuple[float | None, str]:
        result = client.complete(judge_messages(rubric, output, reference, messages), **params)
        if result.error:
            return None, _cut(f"judge call failed: {result.error}")
        return parse_judge_reply(result.text)

    return judge

"""What a judge answers: one JSON object with a 1-5 `score` and a `reason`, read the same strict way everywhere.

Both judges (the trace judge of CAPTURE and the rubric judge of EVALUATE) ask for this reply. A reply
that is not exactly this (a score given as text, a boolean, prose around a bare object) is no score:
nothing is guessed from free text. A single ```json fenced block is read wherever it stands.
"""

from __future__ import annotations

import json
import re

from pydantic import BaseModel, ConfigDict, Field, ValidationError

MIN_SCORE, MAX_SCORE = 1.0, 5.0
MAX_REASON_CHARS = 500
_FENCE = re.compile(r"```(?:json|JSON)?[ \t]*\n(.*?)\n?```", re.DOTALL)


class JudgeReply(BaseModel):
    """The reply's contract: `score` a number (not text, not a boolean) from 1 to 5, `reason` text."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    score: float = Field(ge=MIN_SCORE, le=MAX_SCORE, allow_inf_nan=False)
    reason: str = ""


class UnreadableReply(ValueError):
    """The reply is not a JudgeReply; the message says why and quotes its start."""


def read_judge_reply(text: str | None) -> JudgeReply:
    """The JudgeReply in `text`, or UnreadableReply naming what is wrong."""

    def bad(why: str) -> UnreadableReply:
        snippet = " ".join((text or "").split())[:120]
        return UnreadableReply(f"unparseable judge reply: {why}: {snippet!r}")

    if text is None or not text.strip():
        raise bad("empty reply")
    body = text.strip()
    fences = _FENCE.findall(body)
    if len(fences) > 1:
        raise bad(f"{len(fences)} fenced blocks, not one")
    if fences:
        body = fences[0].strip()
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        raise bad("not a JSON object") from None
    if not isinstance(payload, dict):
        raise bad(f"JSON {type(payload).__name__}, not an object")
    try:
        reply = JudgeReply.model_validate(payload)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        value = payload.get(field)
        if error["type"] == "missing":
            raise bad(f"no `{field}` key") from None
        if error["type"] in ("less_than_equal", "greater_than_equal", "finite_number"):
            raise bad(f"`{field}` {value} is outside {MIN_SCORE:g}..{MAX_SCORE:g}") from None
        raise bad(f"`{field}` is {type(value).__name__}, not a {'number' if field == 'score' else 'string'}") from None
    return reply.model_copy(update={"reason": " ".join(reply.reason.split())[:MAX_REASON_CHARS]})

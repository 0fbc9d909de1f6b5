"""The `langfuse` format: Langfuse observations and traces, as the Langfuse UI export and public API give them.

Records (one per JSONL line, or per element of a `.json` array, or an API page `{"data": [...]}`):

- an observation (`/api/public/observations`): `{"id", "traceId", "type": "GENERATION" | "SPAN" |
  "EVENT" | ..., "name", "startTime", "endTime", "completionStartTime", "model", "modelParameters",
  "input", "output", "metadata", "level": "DEBUG" | "DEFAULT" | "WARNING" | "ERROR",
  "statusMessage", "parentObservationId", "usage"/"usageDetails", "costDetails", ...}`, optionally
  with its `scores`;
- a trace with its observations (`/api/public/traces/{id}`): `{"id", "timestamp", "name",
  "userId", "sessionId", "metadata", "tags", ..., "observations": [...], "scores": [...]}`. Each
  observation is an item; the trace's fields travel with each (`metadata.trace`).
- a trace download (the UI's and the API's): `{"trace": {..., "scores", "observations": [stubs]},
  "observations": [...]}`. The top-level observations are complete (input and output, often as JSON
  text); the trace's own list may repeat them without content, so each observation is read once,
  from its complete copy (paths `observations[i]`, else `trace.observations[j]`).

Only GENERATION observations are LLM calls: one row each, `trace_id` = `traceId`, `span_id` = the
observation `id`. A GENERATION whose child is a GENERATION only wraps it (the Vercel AI SDK's
`ai.generateText` around `ai.generateText.doGenerate`): it is skipped, naming the inner one, so one
call gives one row; when the inner one cannot be read, the wrapper is the row (the inner one is
quarantined saying why). Other observations (SPAN, EVENT, AGENT, TOOL, ...) are skipped and listed; a record
with no GENERATION (a lone SPAN observation, a trace that lists only observation ids, a lone score)
is quarantined as `no_trace`, saying what it held.

Fields:

- ts: `startTime` (required), latency_ms: `endTime` - `startTime`, else `latency` (seconds).
- input_messages: `input` as Langfuse logs it: OpenAI messages, `{"messages": [...]}`, LangChain
  messages, a prompt string (one user message), ... (see `chat.messages_from`).
- output_text / finish_reason: `output` (a message, text, an OpenAI response, ...; see
  `chat.output_from`); tool calls go to metadata.tool_calls.
- model: `model`, else `providedModelName`.
- error: `level == "ERROR"`: the `statusMessage` (else "ERROR"); output_text is null when such a call
  logged no output. A WARNING level and its message stay in metadata.
- app: `metadata.app` of the observation, else of the trace, else the trace `name` (of a nested
  trace, or `traceName` on the observation), else "default".
- feedback: scores (`{"name", "value", "stringValue", "dataType": NUMERIC | BOOLEAN | CATEGORICAL |
  CORRECTION, "comment", "source": API | EVAL | ANNOTATION, "observationId", ...}`): those on the
  observation (`scores`) and those of a nested trace whose `observationId` is this generation; every
  other score of the trace (trace-level ones without `observationId`, such as a `user-feedback` score
  on the whole conversation, marked `"scope": "trace"`, and scores of its SPAN observations) goes
  with the trace's last GENERATION by start time whose time, input and output can be read, the
  answer the user saw: a trace keeps its scores whichever of its calls are rejected. Each becomes
  `{"name", "value", "label": stringValue, "comment", "source", "dataType", ...}` (a BOOLEAN value
  as true/false); thumbs and rating as `chat.feedback_columns` decides; a CORRECTION score is the
  corrected_output.
- usage (metadata.usage): `usageDetails` (or `usage`) as `input_tokens`/`output_tokens`/`total_tokens`
  (`base.usage_of`); the logged object, when it differs, as `record.usage`.
- metadata: the observation's `metadata` (its keys at the top; JSON text is decoded), every other
  field not read above
  (name, usage, costs, model parameters, prompt, level, parent observation ...), the trace's fields
  under `trace`, and the answer's tool calls.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from loop_assets.capture.formats.base import (
    Part,
    RecordError,
    TraceRow,
    check_timestamp_range,
    json_object,
    normalise_all,
    parse_timestamp,
    record_hash,
    settle_answer,
    show,
    start_seconds,
    to_json,
    usage_of,
    with_extras,
)
from loop_assets.capture.formats.chat import (
    as_text,
    feedback_columns,
    input_text,
    messages_from,
    output_from,
    text_or_none,
)
from loop_assets.config import IngestConfig

OBSERVATION_TYPES = frozenset(
    {"GENERATION", "SPAN", "EVENT", "AGENT", "TOOL", "CHAIN", "RETRIEVER", "EVALUATOR", "EMBEDDING", "GUARDRAIL"}
)
_READ = frozenset(
    {"id", "traceId", "type", "startTime", "endTime", "input", "output", "model", "scores", "trace", "metadata"}
)


def _type(obj: dict[str, Any]) -> str | None:
    value = obj.get("type")
    return value.strip().upper() if isinstance(value, str) else None


def is_observation(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and _type(obj) in OBSERVATION_TYPES
        and any(k in obj for k in ("traceId", "startTime", "parentObservationId"))
    )


def is_trace(obj: Any) -> bool:
    return isinstance(obj, dict) and isinstance(obj.get("observations"), list) and "id" in obj


def is_download(obj: Any) -> bool:
    """A trace as the Langfuse UI and API download it: `{"trace": {...}, "observations": [...]}`."""
    return isinstance(obj, dict) and isinstance(obj.get("trace"), dict) and isinstance(obj.get("observations"), list)


def is_score(obj: Any) -> bool:
    return isinstance(obj, dict) and "dataType" in obj and "name" in obj and "type" not in obj


class LangfuseFormat:
    name = "langfuse"
    looks_for = (
        "Langfuse observations (`type` GENERATION/SPAN/EVENT with `traceId`, `startTime`) or traces with `observations`"
    )

    def detect(self, obj: dict[str, Any]) -> bool:
        return (
            is_observation(obj)
            or (is_trace(obj) and ("timestamp" in obj or "scores" in obj or "name" in obj))
            or (is_download(obj) and "id" in obj["trace"])
        )

    def split(self, obj: dict[str, Any]) -> list[Part]:
        if is_download(obj):
            return _split_download(obj)
        if is_trace(obj):
            observations = obj["observations"]
            return _split_trace(obj, [(("observations", i), o) for i, o in enumerate(observations)])
        if is_observation(obj):
            return [_part(obj, ())]
        if is_score(obj):
            return [Part(obj, skip="a Langfuse score on its own, not an observation", label=_label_score(obj))]
        keys = ", ".join(show(k, 40) for k in list(obj)[:12]) or "none"
        error = RecordError(
            "unknown_format", f"not a Langfuse observation or trace: looked for {self.looks_for}; keys: {keys}"
        )
        return [Part(obj, error=error)]

    def normalise(self, obj: dict[str, Any], ingest: IngestConfig, *, now: datetime | None = None) -> list[TraceRow]:
        return normalise_all(self, obj, ingest, now, _read)


FORMAT = LangfuseFormat()


def _label_score(obj: dict[str, Any]) -> str:
    return f"score {obj.get('name')!r}"


def _part(obs: dict[str, Any], path: tuple[str | int, ...]) -> Part:
    kind = _type(obs)
    label = f"{(kind or 'observation').lower()} {obs.get('id')}" + (f" {obs['name']!r}" if obs.get("name") else "")
    skip = None if kind == "GENERATION" else f"Langfuse {kind} observation, not an LLM call"
    trace_id = obs.get("traceId") if isinstance(obs.get("traceId"), str) else None
    item_id = obs.get("id") if isinstance(obs.get("id"), str) else None
    return Part(obs, path, skip=skip, label=label, trace_id=trace_id, item_id=item_id)


def _split_download(obj: dict[str, Any]) -> list[Part]:
    """A downloaded trace: the top-level `observations` are complete; the trace's own `observations`
    may list the same ones without input and output (or by id only). Each observation is read once,
    from the complete copy where there is one."""
    full = [(("observations", i), o) for i, o in enumerate(obj["observations"])]
    have = {str(o.get("id")) for _, o in full if isinstance(o, dict) and o.get("id") is not None}
    stubs = obj["trace"].get("observations")
    extra = []
    if isinstance(stubs, list):
        for j, stub in enumerate(stubs):
            key = stub.get("id") if isinstance(stub, dict) else stub
            if str(key) not in have:
                extra.append((("trace", "observations", j), stub))
    trace = {k: v for k, v in obj["trace"].items() if k != "observations"}
    return _split_trace(trace, full + extra)


def _split_trace(trace: dict[str, Any], observations: list[tuple[tuple[str | int, ...], Any]]) -> list[Part]:
    if not observations:
        return [Part(trace, skip="a Langfuse trace with no observations", label=f"trace {trace.get('id')}")]
    context = {k: v for k, v in trace.items() if k not in ("observations", "scores", "corrections")}
    scores = trace.get("scores")
    if not isinstance(scores, list):
        if scores is not None:
            context["scores"] = scores
        scores = []
    if isinstance(trace.get("corrections"), list):
        scores = scores + [c for c in trace["corrections"] if isinstance(c, dict)]
    generations = [i for i, (_, o) in enumerate(observations) if isinstance(o, dict) and _type(o) == "GENERATION"]
    by_id = {str(observations[i][1].get("id")): observations[i][1] for i in generations}
    # a wrapper is skipped only when the call it wraps can be read; else the wrapper is the row
    wrappers = {
        outer: inner
        for outer, inner in _wrappers([observations[i][1] for i in generations]).items()
        if _readable(by_id[inner])
    }
    calls = [i for i in generations if str(observations[i][1].get("id")) not in wrappers]
    generation_ids = {str(observations[i][1].get("id")): i for i in calls}
    # Trace-level scores go with the last call that can be read: the answer the user saw, and a trace
    # keeps its scores whichever of its calls are rejected. Finding it reads every call (which normalise
    # then reads again), so it is done only when there are scores to place.
    last = None
    if scores:
        readable = [i for i in calls if _readable(observations[i][1])] or calls
        last = max(readable, key=lambda i: (start_seconds(observations[i][1], "startTime"), i)) if readable else None
    # A score on a generation goes with it; every other score (on the trace, on a SPAN observation, or on
    # an observation not in this export) goes with that last generation.
    attached: dict[int, list[Any]] = {}
    for score in scores:
        target = None
        if isinstance(score, dict) and score.get("observationId") not in (None, ""):
            target = generation_ids.get(str(score["observationId"]))
        if target is None:
            if isinstance(score, dict) and score.get("observationId") in (None, ""):
                score = {**score, "scope": "trace"}
            target = last
        if target is None:
            context.setdefault("scores", []).append(score)
        else:
            attached.setdefault(target, []).append(score)
    parts = []
    for i, (path, obs) in enumerate(observations):
        if isinstance(obs, str):
            parts.append(
                Part(
                    obs,
                    path,
                    skip="observation listed by id only (export traces with their observations)",
                    label=f"observation {obs}",
                    trace_id=text_or_none(trace.get("id")),
                    item_id=obs,
                )
            )
            continue
        if not isinstance(obs, dict):
            where = ".".join(str(p) for p in path)
            error = RecordError("wrong_type", f"`{where}` must be an observation object, got {show(obs)}")
            parts.append(Part(obs, path, error=error, label=where))
            continue
        item = {**obs, "trace": context}
        if "traceId" not in item and trace.get("id") is not None:
            item["traceId"] = trace["id"]
        own = obs.get("scores") if isinstance(obs.get("scores"), list) else []
        if attached.get(i):
            item["scores"] = own + attached[i]
        part = _part(item, path)
        if str(obs.get("id")) in wrappers and i in generations:
            skip = (
                f"Langfuse GENERATION that wraps generation {wrappers[str(obs.get('id'))]}: that inner call is the row"
            )
            part = Part(item, path, skip=skip, label=part.label, trace_id=part.trace_id, item_id=part.item_id)
        parts.append(part)
    return parts


def _wrappers(generations: list[dict[str, Any]]) -> dict[str, str]:
    """Generations that only wrap another generation (the Vercel AI SDK's `ai.generateText` around its
    `ai.generateText.doGenerate`): id -> the inner generation's id. One LLM call gives one row."""
    ids = {str(g.get("id")) for g in generations if g.get("id") is not None}
    out: dict[str, str] = {}
    for g in generations:
        parent = g.get("parentObservationId")
        if parent is not None and str(parent) in ids and g.get("id") is not None:
            out.setdefault(str(parent), str(g["id"]))
    return out


def _readable(obs: dict[str, Any]) -> bool:
    """Whether a generation's time, input and output can be read (its scores are safe with it)."""
    try:
        parse_timestamp(obs.get("startTime"), "startTime")
        messages_from(obs.get("input"), "input")
        output_from(obs.get("output"), "output")
    except (RecordError, RecursionError):
        return False
    return True


def _read(obs: dict[str, Any], ingest: IngestConfig, now: datetime | None) -> list[TraceRow]:
    field = next((k for k in ("startTime", "start_time", "timestamp") if obs.get(k) not in (None, "")), None)
    if field is None:
        raise RecordError("missing_field", "no start time: `startTime` is missing or null")
    ts = parse_timestamp(obs[field], field)
    check_timestamp_range(ts, field, ingest, now)
    try:
        return [_normalise(obs, ingest, ts, field)]
    except RecordError as exc:
        exc.ts = ts
        raise


def _normalise(obs: dict[str, Any], ingest: IngestConfig, ts: datetime, ts_field: str) -> TraceRow:
    used = set(_READ) | {ts_field}
    trace = obs.get("trace") if isinstance(obs.get("trace"), dict) else {}
    if "input" not in obs or obs["input"] is None:
        raise RecordError("missing_field", "no request: `input` is missing or null")
    messages = messages_from(obs["input"], "input")
    text, finish, calls = output_from(obs.get("output"), "output")
    error = None
    if text_or_none(obs.get("level")) and str(obs["level"]).upper() == "ERROR":
        error = text_or_none(obs.get("statusMessage")) or "ERROR"
        used |= {"level", "statusMessage"}
    text, finish = settle_answer(text, finish, calls, error)
    model = text_or_none(obs.get("model")) or text_or_none(obs.get("providedModelName"))
    if model and not text_or_none(obs.get("model")):
        used.add("providedModelName")
    if obs.get("scores") is not None and not isinstance(obs["scores"], list):
        raise RecordError("wrong_type", f"`scores` must be a list of score objects, got {show(obs['scores'])}")
    scores = [_score(s) for s in obs.get("scores") or [] if isinstance(s, dict)]
    feedback, thumbs, rating, corrected = feedback_columns(scores)
    trace_id = text_or_none(obs.get("traceId")) or text_or_none(trace.get("id")) or "h_" + record_hash(obs)[:32]
    return TraceRow(
        trace_id=trace_id,
        span_id=text_or_none(obs.get("id")),
        ts=ts,
        app=_app(obs, trace),
        model=model,
        input_messages=to_json(messages),
        input_text=input_text(messages, ingest.context_min_chars),
        output_text=text,
        latency_ms=_latency(obs, ts, used),
        finish_reason=finish,
        error=error,
        feedback=feedback,
        feedback_thumbs=thumbs,
        feedback_rating=rating,
        corrected_output=corrected,
        metadata=to_json(_metadata(obs, trace, used, calls)),
    )


def _latency(obs: dict[str, Any], ts: datetime, used: set[str]) -> float | None:
    if obs.get("endTime") not in (None, ""):
        ms = (parse_timestamp(obs["endTime"], "endTime") - ts).total_seconds() * 1000
        if ms < 0:
            raise RecordError("invalid_value", f"`endTime` is {-ms:.0f} ms before `startTime`")
        return ms
    latency = obs.get("latency")
    if isinstance(latency, int | float) and not isinstance(latency, bool) and latency >= 0:
        used.add("latency")
        return float(latency) * 1000
    return None


def _app(obs: dict[str, Any], trace: dict[str, Any]) -> str:
    for source in (json_object(obs.get("metadata")), json_object(trace.get("metadata"))):
        if isinstance(source, dict) and text_or_none(source.get("app")):
            return as_text(source["app"])
    for name in (trace.get("name"), obs.get("traceName")):
        if text_or_none(name):
            return as_text(name)
    return "default"


def _score(score: dict[str, Any]) -> dict[str, Any]:
    kind = str(score.get("dataType", "")).upper()
    value = score.get("value")
    label = score.get("stringValue")
    out: dict[str, Any] = {"name": score.get("name")}
    if kind == "BOOLEAN":
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = bool(value)
        elif isinstance(label, str) and label.lower() in ("true", "false"):
            value = label.lower() == "true"
    if kind == "CORRECTION":
        out["correction"] = label if label is not None else value
    else:
        if value is not None:
            out["value"] = value
        if label is not None:
            out["label"] = label
    for key in ("comment", "source", "dataType"):
        if score.get(key) is not None:
            out[key] = score[key]
    out.update({k: v for k, v in score.items() if k not in ("name", "value", "stringValue", *out)})
    return out


def _metadata(obs: dict[str, Any], trace: dict[str, Any], used: set[str], calls: Any) -> dict[str, Any]:
    value = json_object(obs.get("metadata"))
    meta: dict[str, Any] = dict(value) if isinstance(value, dict) else {}
    if value is not None and not isinstance(value, dict):
        meta["metadata"] = value
    extras = {k: v for k, v in obs.items() if k not in used}
    if trace:
        extras["trace"] = trace
    if calls:
        extras["tool_calls"] = calls
    return with_extras(meta, extras, usage_of(obs.get("usageDetails"), obs.get("usage")))

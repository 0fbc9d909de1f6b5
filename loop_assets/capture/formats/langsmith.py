"""The `langsmith` format: LangSmith runs, as run exports (JSONL or JSON arrays) and the runs API give them.

A record is a run: `{"id", "name", "run_type": "llm" | "chain" | "tool" | "retriever" | "embedding" |
"prompt" | "parser", "start_time", "end_time", "inputs", "outputs", "error", "extra":
{"invocation_params", "metadata", ...}, "trace_id", "parent_run_id", "dotted_order", "session_id",
"session_name", "tags", "feedback_stats", ...}`, optionally with `feedback` (a list of feedback
records) and `child_runs` (a run tree, as `RunTree`/`Run.child_runs` export it). The API page shape
`{"runs": [...]}` is read as an array (see `formats.documents`). The SDKs' batch-ingest payload
`{"post": [run starts], "patch": [run ends]}` (Python and JS; the JS SDK writes epoch milliseconds)
gives each run once: its `post` with its `patch` (end_time, outputs, error, events) laid over it,
matched by `id`, else by `dotted_order`; a patch whose start is not in the payload is quarantined
(`missing_field`) saying so.

Only `run_type == "llm"` runs are LLM requests: one row each, `trace_id` = `trace_id` (the root run's
id; the run's own `id` when absent), `span_id` = the run `id`. Every run of a tree is an item; chain,
tool, retriever ... runs are skipped and listed. A record with no LLM run at all (a chain run on its
own line, a lone feedback record) is quarantined as `no_trace`, saying what it was.

Fields:

- ts: `start_time` (required); latency_ms: `end_time` - `start_time`.
- input_messages: `inputs` as LangChain and the LangSmith wrappers log them: `{"messages": [[...]]}`
  (LangChain chat models: serialised messages, a batch; the first prompt is read), `{"messages":
  [...]}` (OpenAI wrappers), `{"prompts": [...]}` (completion LLMs), ... (see `chat.messages_from`).
  The other inputs (model, temperature, tools, ...) stay in metadata.inputs.
- output_text / finish_reason: `outputs`: a LangChain `LLMResult` (`generations[0][0]` text or
  message, `generation_info.finish_reason`), an OpenAI response (`choices`), `{"output": ...}`, ...;
  tool calls go to metadata.tool_calls; the rest of outputs (llm_output, usage, ids) stays in
  metadata.outputs.
- model: the one that answered first (`outputs.model`, `outputs.llm_output.model_name`,
  `outputs.response_metadata.model_name`), then the one asked for (`extra.invocation_params.model` /
  `model_name`, `extra.metadata.ls_model_name`, `inputs.model`).
- usage (metadata.usage): `outputs.usage_metadata`, `outputs.usage` or `llm_output.token_usage` as
  `input_tokens`/`output_tokens`/`total_tokens`.
- error: `error` (LangSmith keeps the error text and traceback there); output_text is null when the
  run logged no output.
- app: `extra.metadata.app` (or `metadata.app`), else the `session_name` (the tracing project), else
  "default". Child runs of a tree inherit the root's when they have none.
- feedback: `feedback` records (`{"key", "score", "value", "comment", "correction",
  "feedback_source"}`) become `{"name": key, "value": score, "label": value, "comment", "correction",
  "source": feedback_source.type, ...}`; without them, `feedback_stats` (`{key: {"n", "avg", ...}}`)
  gives `{"name": key, "value": avg, "n": n, ...}`. Thumbs (a user-feedback key such as `user_score`,
  `thumbs_up`, `user-feedback` scored 0/1, or a thumbs value), rating and corrected_output as
  `chat.feedback_columns` decides. In a run tree, feedback given on a non-LLM run (typically the
  root) goes with the tree's last LLM run, the answer the user saw.
- metadata: `extra.metadata` (its keys at the top), every field not read above (name, tags, parent
  run, dotted order, session, token counts, serialized, events, the rest of `extra`), plus
  `feedback_stats` when feedback records were read, and the answer's tool calls.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from loop_assets.capture.formats.base import (
    Part,
    RecordError,
    TraceRow,
    check_timestamp_range,
    get_path,
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

RUN_TYPES = frozenset({"llm", "chain", "tool", "retriever", "embedding", "prompt", "parser"})
MAX_TREE_DEPTH = 200
_READ = frozenset(
    {"id", "trace_id", "run_type", "start_time", "end_time", "inputs", "outputs", "error", "feedback", "extra"}
)
_OUTPUT_KEYS = ("generations", "choices", "output", "text", "content", "completion", "message")


def is_run(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and isinstance(obj.get("run_type"), str)
        and any(k in obj for k in ("inputs", "outputs", "start_time"))
    )


def is_batch(obj: Any) -> bool:
    """The SDK's batch-ingest payload: `{"post": [run starts], "patch": [run ends]}` (`/runs/batch`)."""
    return (
        isinstance(obj, dict)
        and isinstance(obj.get("post", obj.get("patch")), list)
        and set(obj) <= {"post", "patch", "pre_sampled"}
    )


def is_feedback(obj: Any) -> bool:
    return isinstance(obj, dict) and "key" in obj and "run_id" in obj and ("score" in obj or "value" in obj)


class LangSmithFormat:
    name = "langsmith"
    looks_for = "LangSmith runs (`run_type`, `inputs`, `outputs`, `start_time`)"

    def detect(self, obj: dict[str, Any]) -> bool:
        return is_run(obj) or (is_batch(obj) and any(is_run(r) for r in obj.get("post") or obj.get("patch") or []))

    def split(self, obj: dict[str, Any]) -> list[Part]:
        if is_batch(obj):
            return _split_batch(obj)
        if is_feedback(obj):
            return [
                Part(obj, skip="a LangSmith feedback record on its own, not a run", label=f"feedback {obj['key']!r}")
            ]
        if not is_run(obj):
            keys = ", ".join(show(k, 40) for k in list(obj)[:12]) or "none"
            error = RecordError("unknown_format", f"not a LangSmith run: looked for {self.looks_for}; keys: {keys}")
            return [Part(obj, error=error)]
        if not isinstance(obj.get("child_runs"), list) or not obj["child_runs"]:
            return [_part(obj, ())]
        return _split_tree(obj)

    def normalise(self, obj: dict[str, Any], ingest: IngestConfig, *, now: datetime | None = None) -> list[TraceRow]:
        return normalise_all(self, obj, ingest, now, _read)


FORMAT = LangSmithFormat()


def _part(run: dict[str, Any], path: tuple[str | int, ...]) -> Part:
    kind = run.get("run_type")
    label = f"{kind} run {run.get('id')}" + (f" {run['name']!r}" if run.get("name") else "")
    skip = None if kind == "llm" else f"LangSmith {kind} run, not an LLM call"
    return Part(
        run,
        path,
        skip=skip,
        label=label,
        trace_id=text_or_none(run.get("trace_id")),
        item_id=text_or_none(run.get("id")),
    )


def _split_tree(root: dict[str, Any]) -> list[Part]:
    """Every run of the tree (depth first, in logged order), child_runs left out of each item."""
    found: list[tuple[tuple[str | int, ...], Any]] = []
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), root)]
    while stack:
        path, run = stack.pop()
        found.append((path, run))
        children = run.get("child_runs") if isinstance(run, dict) else None
        if isinstance(children, list) and len(path) < 2 * MAX_TREE_DEPTH:
            stack.extend(((*path, "child_runs", i), c) for i, c in reversed(list(enumerate(children))))
    inherited = {k: root[k] for k in ("session_name", "session_id") if root.get(k) is not None}
    root_meta = get_path(root, "extra.metadata")
    llm_indexes = [i for i, (_, run) in enumerate(found) if isinstance(run, dict) and run.get("run_type") == "llm"]
    last = max(llm_indexes, key=lambda i: (start_seconds(found[i][1], "start_time"), i)) if llm_indexes else None
    passed_on = []  # feedback of non-LLM runs, for the last LLM run
    for _, run in found:
        if isinstance(run, dict) and run.get("run_type") != "llm" and isinstance(run.get("feedback"), list):
            passed_on.extend({**f, "from_run": run.get("id")} if isinstance(f, dict) else f for f in run["feedback"])
    parts = []
    for i, (path, run) in enumerate(found):
        if not isinstance(run, dict):
            error = RecordError("wrong_type", f"the run at {_where(path)} must be an object, got {show(run)}")
            parts.append(Part(run, path, error=error, label=_where(path)))
            continue
        item = {k: v for k, v in run.items() if k != "child_runs"}
        if path:
            for key, value in inherited.items():
                item.setdefault(key, value)
            if (
                isinstance(root_meta, dict)
                and root_meta.get("app")
                and not text_or_none(get_path(item, "extra.metadata.app"))
            ):
                extra = item.get("extra") if isinstance(item.get("extra"), dict) else {}
                meta = extra.get("metadata") if isinstance(extra.get("metadata"), dict) else {}
                item["extra"] = {**extra, "metadata": {**meta, "app": root_meta["app"]}}
            if item.get("trace_id") is None and root.get("id") is not None:
                item["trace_id"] = root.get("trace_id") or root["id"]
        if i == last and passed_on:
            own = item.get("feedback") if isinstance(item.get("feedback"), list) else []
            item["feedback"] = own + passed_on
        parts.append(_part(item, path))
    return parts


def _split_batch(obj: dict[str, Any]) -> list[Part]:
    """A batch-ingest payload: each run's start (`post`) merged with its end (`patch`: end_time, outputs,
    error, events), matched by run `id`, else by `dotted_order` (the JS SDK's patch carries no id). A
    patch without its start is read on its own (it usually lacks inputs and start_time: quarantined)."""
    posts = obj.get("post") if isinstance(obj.get("post"), list) else []
    patches = obj.get("patch") if isinstance(obj.get("patch"), list) else []
    by_key: dict[tuple[str, str], int] = {}
    for i, run in enumerate(posts):
        if isinstance(run, dict):
            for key in ("id", "dotted_order"):
                if run.get(key) not in (None, ""):
                    by_key.setdefault((key, str(run[key])), i)
    merged: dict[int, dict[str, Any]] = {}
    alone: list[tuple[int, Any]] = []
    for j, patch in enumerate(patches):
        target = None
        if isinstance(patch, dict):
            for key in ("id", "dotted_order"):
                if patch.get(key) not in (None, "") and (key, str(patch[key])) in by_key:
                    target = by_key[(key, str(patch[key]))]
                    break
        if target is None:
            alone.append((j, patch))
        else:
            base = merged.get(target, posts[target])
            merged[target] = {**base, **{k: v for k, v in patch.items() if v is not None or k not in base}}
    parts = []
    for i, run in enumerate(posts):
        parts.extend(_batch_parts(merged.get(i, run), ("post", i)))
    for j, patch in alone:
        parts.extend(_batch_parts(patch, ("patch", j)))
    return parts


def _batch_parts(run: Any, path: tuple[str | int, ...]) -> list[Part]:
    if not isinstance(run, dict):
        error = RecordError("wrong_type", f"the run at {_where(path)} must be an object, got {show(run)}")
        return [Part(run, path, error=error, label=_where(path))]
    if "run_type" not in run:  # a patch whose start is not in this payload
        error = RecordError(
            "missing_field",
            f"the run end at {_where(path)} has no start in this payload (no `post` with its id or dotted_order): "
            "its inputs and start time were sent in another batch",
        )
        return [Part(run, path, error=error, label=_where(path), trace_id=text_or_none(run.get("trace_id")))]
    if isinstance(run.get("child_runs"), list) and run["child_runs"]:
        return [replace(p, path=(*path, *p.path)) for p in _split_tree(run)]
    return [_part(run, path)]


def _where(path: tuple[str | int, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".") or "the root"


def _read(run: dict[str, Any], ingest: IngestConfig, now: datetime | None) -> list[TraceRow]:
    if run.get("start_time") in (None, ""):
        raise RecordError("missing_field", "no start time: `start_time` is missing or null")
    ts = parse_timestamp(run["start_time"], "start_time")
    check_timestamp_range(ts, "start_time", ingest, now)
    try:
        return [_normalise(run, ingest, ts)]
    except RecordError as exc:
        exc.ts = ts
        raise


def _normalise(run: dict[str, Any], ingest: IngestConfig, ts: datetime) -> TraceRow:
    used = set(_READ)
    inputs = run.get("inputs")
    if inputs is None:
        raise RecordError("missing_field", "no request: `inputs` is missing or null")
    messages = messages_from(inputs, "inputs")
    outputs = run.get("outputs")
    text, finish, calls = output_from(outputs, "outputs")
    error = text_or_none(run.get("error"))
    text, finish = settle_answer(text, finish, calls, error)
    if run.get("feedback") is not None and not isinstance(run["feedback"], list):
        raise RecordError("wrong_type", f"`feedback` must be a list of feedback records, got {show(run['feedback'])}")
    feedback_records = [f for f in run.get("feedback") or [] if isinstance(f, dict)]
    scores = [_feedback(f) for f in feedback_records]
    stats = run.get("feedback_stats")
    if not scores and isinstance(stats, dict):
        scores = [_stat(key, value) for key, value in stats.items()]
        used.add("feedback_stats")
    feedback, thumbs, rating, corrected = feedback_columns(scores)
    trace_id = text_or_none(run.get("trace_id")) or text_or_none(run.get("id")) or "h_" + record_hash(run)[:32]
    return TraceRow(
        trace_id=trace_id,
        span_id=text_or_none(run.get("id")),
        ts=ts,
        app=_app(run),
        model=_model(run),
        input_messages=to_json(messages),
        input_text=input_text(messages, ingest.context_min_chars),
        output_text=text,
        latency_ms=_latency(run, ts),
        finish_reason=finish,
        error=error,
        feedback=feedback,
        feedback_thumbs=thumbs,
        feedback_rating=rating,
        corrected_output=corrected,
        metadata=to_json(_metadata(run, used, calls)),
    )


def _latency(run: dict[str, Any], ts: datetime) -> float | None:
    if run.get("end_time") in (None, ""):
        return None
    ms = (parse_timestamp(run["end_time"], "end_time") - ts).total_seconds() * 1000
    if ms < 0:
        raise RecordError("invalid_value", f"`end_time` is {-ms:.0f} ms before `start_time`")
    return ms


def _model(run: dict[str, Any]) -> str | None:
    # the model that answered (the response's) before the one asked for
    for path in (
        "outputs.model",
        "outputs.llm_output.model_name",
        "outputs.response_metadata.model_name",
        "extra.invocation_params.model",
        "extra.invocation_params.model_name",
        "extra.metadata.ls_model_name",
        "inputs.model",
    ):
        value = get_path(run, path)
        if value not in (None, ""):
            return as_text(value)
    return None


def _app(run: dict[str, Any]) -> str:
    for path in ("extra.metadata.app", "metadata.app", "session_name"):
        value = get_path(run, path)
        if value not in (None, ""):
            return as_text(value)
    return "default"


def _feedback(record: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": record.get("key")}
    if record.get("score") is not None:
        out["value"] = record["score"]
    if record.get("value") is not None:
        out["label"] = record["value"]
    for key in ("comment", "correction"):
        if record.get(key) not in (None, ""):
            out[key] = record[key]
    source = record.get("feedback_source")
    if isinstance(source, dict) and source.get("type"):
        out["source"] = source["type"]
    out.update({k: v for k, v in record.items() if k not in ("key", "score", "value", *out)})
    return out


def _stat(key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        return {"name": key, "value": value, "source": "feedback_stats"}
    out: dict[str, Any] = {"name": key}
    if value.get("avg") is not None:
        out["value"] = value["avg"]
    out["source"] = "feedback_stats"
    out.update({k: v for k, v in value.items() if k != "avg"})
    return out


def _metadata(run: dict[str, Any], used: set[str], calls: Any) -> dict[str, Any]:
    extra = run.get("extra") if isinstance(run.get("extra"), dict) else {}
    value = extra.get("metadata")
    meta: dict[str, Any] = dict(value) if isinstance(value, dict) else {}
    extras: dict[str, Any] = {k: v for k, v in run.items() if k not in used}
    rest_extra = {k: v for k, v in extra.items() if k != "metadata"}
    if run.get("extra") is not None and not isinstance(run.get("extra"), dict):
        rest_extra = {"extra": run["extra"]}
    if rest_extra:
        extras["extra"] = rest_extra
    inputs = run.get("inputs")
    if isinstance(inputs, dict):
        rest = {k: v for k, v in inputs.items() if k not in ("messages", "prompts", "prompt")}
        if rest:
            extras["inputs"] = rest
    outputs = run.get("outputs")
    if isinstance(outputs, dict):
        rest = {k: v for k, v in outputs.items() if k not in _OUTPUT_KEYS}
        if rest:
            extras["outputs"] = rest
    if calls:
        extras["tool_calls"] = calls
    usage = usage_of(
        get_path(run, "outputs.usage_metadata"),
        get_path(run, "outputs.usage"),
        get_path(run, "outputs.llm_output.token_usage"),
        get_path(run, "outputs.llm_output.usage"),
    )
    return with_extras(meta, extras, usage)

"""Langfuse dataset items JSONL: one `CreateDatasetItemRequest` body per line.

Each line can be sent as is to Langfuse's create-dataset-item endpoint, or passed to the SDK
(`langfuse.create_dataset_item(**item)` with the keys in snake case). Items are upserted on `id`,
so uploading a newer suite version into the same dataset updates the cases it already has and adds
the new ones.

- `id` <- case_id; `datasetName` <- the dataset name (`--dataset-name`, default `eval-loop`).
- `input` <- `{"messages": input_messages}` (an object, so the messages are the `messages` variable
  of a Langfuse prompt experiment).
- `expectedOutput` <- expected_output (null when the case has no reference answer).
- `metadata` <- case id, app, label, weight, grading checks, provenance and suite version.
- `sourceTraceId` <- trace_id; `sourceObservationId` <- span_id (null when the trace had none).
  They link the item to its trace only where the application also logs its traces to Langfuse under
  the same ids.
- `status` <- `ACTIVE` (the export holds active cases only).

Not mapped (kept only in metadata): the grading checks; Langfuse evaluators are configured on the
dataset run, not on items.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loop_assets.exports.suite import Case, SuiteVersion, read_case, read_jsonl_lines, write_jsonl_lines

SUFFIX = ".langfuse.jsonl"
DEFAULT_DATASET = "eval-loop"


def item(case: Case, version: SuiteVersion, dataset_name: str = DEFAULT_DATASET) -> dict[str, Any]:
    return {
        "id": case.case_id,
        "datasetName": dataset_name,
        "input": {"messages": case.messages},
        "expectedOutput": case.expected_output,
        "metadata": case.metadata(version),
        "sourceTraceId": case.provenance.get("trace_id"),
        "sourceObservationId": case.provenance.get("span_id"),
        "status": "ACTIVE" if case.status == "active" else "ARCHIVED",
    }


def write(cases: list[Case], version: SuiteVersion, path: Path, *, dataset_name: str | None = None, **_: Any) -> None:
    write_jsonl_lines(path, [item(case, version, dataset_name or DEFAULT_DATASET) for case in cases])


def read(path: Path) -> list[dict[str, Any]]:
    return [
        read_case(
            line,
            line.get("metadata") or {},
            input=(line.get("input") or {}).get("messages"),
            expected=line.get("expectedOutput"),
        )
        for line in read_jsonl_lines(path)
    ]

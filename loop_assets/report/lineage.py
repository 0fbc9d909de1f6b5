"""Walk an eval case back to the log line it came from: case, candidate, cluster, scores, trace, file:line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import duckdb

from loop_assets.warehouse import ensure_tables


class CaseNotFound(LookupError):
    pass


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> dict[str, Any] | None:
    frame = con.execute(sql, params).pl()
    if frame.height == 0:
        return None
    return {k: v for k, v in frame.row(0, named=True).items() if k != "embedding"}


def read_source_line(path: Path, line: int, max_bytes: int = 65_536) -> str | None:
    """Line `line` (1-based) of a plain or gzip trace file, or None when the file or line is gone."""
    if line < 1 or not path.is_file():
        return None
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if number == line:
                    return raw[:max_bytes].decode("utf-8", errors="backslashreplace").rstrip("\r\n")
    except (OSError, EOFError):
        return None
    return None


def case_lineage(con: duckdb.DuckDBPyConnection, case_id: str, incoming: Path) -> dict[str, Any]:
    """The chain from a case to its source line, as plain data."""
    ensure_tables(con)
    case = _one(con, "SELECT * FROM eval_suite WHERE case_id = ? ORDER BY day LIMIT 1", [case_id])
    if case is None:
        known = con.execute("SELECT count(*) FROM eval_suite").fetchone()[0]
        raise CaseNotFound(f"no case {case_id!r} in eval_suite ({known} cases; `eval-loop stats` lists them)")
    key = [case["trace_id"], case["day"]]
    candidate = _one(con, "SELECT * FROM graded_candidates WHERE candidate_id = ?", [case["candidate_id"]])
    cluster = _one(con, "SELECT * FROM failure_clusters WHERE trace_id = ? AND day = ?", key)
    if cluster is not None:
        members = con.execute(
            "SELECT trace_id FROM failure_clusters WHERE day = ? AND cluster_id = ? AND cluster_id >= 0 "
            "ORDER BY trace_id LIMIT 20",
            [case["day"], cluster["cluster_id"]],
        ).fetchall()
        cluster["members_sample"] = [m[0] for m in members]
    scored = _one(con, "SELECT * FROM scored_traces WHERE trace_id = ? AND day = ?", key)
    raw = _one(con, "SELECT * FROM raw_traces WHERE trace_id = ? AND day = ?", key)
    source: dict[str, Any] = {"file": case["source_file"], "line": case["source_line"]}
    if raw is not None:
        path = incoming / raw["source_file"]
        text = read_source_line(path, raw["source_line"])
        source.update(path=str(path), text=text, found=text is not None)
        source["mentions_trace_id"] = text is not None and raw["trace_id"] in text
    return {"case": case, "candidate": candidate, "cluster": cluster, "scored": scored, "raw": raw, "source": source}


def _signals(signals: list[dict] | None) -> list[str]:
    return [
        f"{s['scorer']} (v{s['version']}): value {s['value']!s:.80} against threshold {s['threshold']}"
        for s in signals or []
    ]


def format_lineage(chain: dict[str, Any]) -> str:
    """The chain for a person, one step a paragraph."""
    case, cand, cluster, raw, source = (chain[k] for k in ("case", "candidate", "cluster", "raw", "source"))
    out = [
        f"case {case['case_id']}  [{case['status']}]  weight {case['weight']:.3f}",
        f"  label      {case['label']}",
        f"  promoted   from day {case['day']} by run {case['promoted_run_id']} at {case['promoted_at']}",
        f"  grading    {case['grading'][:160]}",
    ]
    if cand:
        out += [
            f"candidate {cand['candidate_id']}  decision {cand['decision']}",
            f"  nearest    {cand['nearest_case_id'] or '-'} similarity {cand['nearest_similarity']}"
            f"  threshold {cand['dedup_threshold']} (suite of {cand['suite_size_before']} cases)",
            f"  factors    novelty {cand['novelty']:.3f}  severity {cand['severity']:.3f}  "
            f"frequency {cand['frequency']} ({cand['frequency_score']:.3f})  difficulty "
            f"{cand['difficulty'] if cand['difficulty'] is not None else 'unknown'} ({cand['difficulty_source']})",
            f"  reason     {cand['reason']}",
        ]
    if cluster:
        out += [
            f"cluster {cluster['cluster_id']} of day {cluster['day']}  ({cluster['cluster_size']} traces; "
            f"{'noise point' if cluster['cluster_id'] < 0 else 'representative'})",
            f"  text       {cluster['text'][:160]}",
            f"  embedding  {cluster['embedding_model']} ({cluster['embedding_source']})",
        ]
    if chain["scored"]:
        out.append(f"scored trace  severity {chain['scored']['severity']:.3f}")
        out += [f"  signal     {s}" for s in _signals(chain["scored"]["failure_signals"])]
    if raw:
        out += [
            f"raw trace {raw['trace_id']}  {raw['ts']}  app {raw['app']}  model {raw['model']}",
            f"  input      {(raw['input_text'] or '')[:160]}",
            f"  output     {(raw['output_text'] or '')[:160]!r}",
        ]
    out.append(f"source {source['file']}:{source['line']}")
    if source.get("text") is not None:
        out.append(f"  {source['text'][:400]}")
    elif raw:
        out.append(f"  (the file is no longer at {source.get('path')})")
    return "\n".join(out)


def lineage_json(chain: dict[str, Any]) -> str:
    return json.dumps(chain, default=str, indent=2, sort_keys=True)

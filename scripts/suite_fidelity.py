"""Measure how faithfully the suite covers the failures of a corpus, independently of the loop's own claims.

Runs `eval-loop materialize` (the real loop, through Dagster) on a copy of each corpus in a fresh
warehouse, then recomputes coverage from the stored embeddings: for every distinct failing input
(app, compared text) the most similar active case of its app, and whether that is at or above the
threshold the loop used for it (and at or above a fixed 0.70). Also: suite size, duplicate
similarities, clusters whose members are not within the threshold of a representative, exact
duplicate cases, and for the bundled sample the cases per failure family.

    .venv/bin/python scripts/suite_fidelity.py                    # ../shared/realdata corpora + data/sample
    .venv/bin/python scripts/suite_fidelity.py --out fidelity.json CORPUS_DIR ...
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPORA = [
    ROOT.parent / "shared" / "realdata" / "dices_safety",
    ROOT.parent / "shared" / "realdata" / "hh_rlhf_harmless",
    ROOT / "data" / "sample",
]
FIXED = 0.70


def run_loop(corpus: Path, work: Path) -> Path:
    incoming, home = work / "incoming", work / "dagster_home"
    incoming.mkdir(parents=True)
    home.mkdir()
    shutil.copy(ROOT / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
    for path in sorted(corpus.iterdir()):
        if path.is_file() and ".jsonl" in path.name:
            shutil.copy(path, incoming / path.name)
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "DAGSTER_HOME": str(home),
        "EVAL_LOOP_INCOMING": str(incoming),
        "EVAL_LOOP_WAREHOUSE": str(work / "warehouse.duckdb"),
    }
    command = [str(Path(sys.executable).with_name("eval-loop")), "materialize", "--log", str(work / "run.log")]
    subprocess.run(command, env=env, check=True, cwd=ROOT)
    return work / "warehouse.duckdb"


def _matrix(column: pl.Series) -> np.ndarray:
    return np.asarray(column.to_list(), dtype=np.float32).reshape(len(column), -1)


def _quantiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p10": None, "p50": None, "p90": None, "min": None}
    arr = np.asarray(values)
    return {k: round(float(np.quantile(arr, q)), 3) for k, q in (("p10", 0.1), ("p50", 0.5), ("p90", 0.9))} | {
        "min": round(float(arr.min()), 3)
    }


def measure(warehouse: Path) -> dict:
    con = duckdb.connect(str(warehouse), read_only=True)
    failures = con.execute(
        "SELECT app, day, trace_id, text_hash, embedding, cluster_id, is_representative, exact_dup_of "
        "FROM failure_clusters ORDER BY day, trace_id"
    ).pl()
    graded = con.execute("SELECT * FROM graded_candidates").pl()
    suite = con.execute("SELECT * FROM eval_suite WHERE status = 'active'").pl()
    # the threshold the loop used for a failure's day and app (its graded rows carry it)
    used = graded.group_by("day", "app").agg(pl.col("dedup_threshold").max().alias("threshold"))
    report: dict = {"apps": {}}
    for app in sorted(failures["app"].unique().to_list()):
        rows = failures.filter(pl.col("app") == app).join(used, on=["day", "app"], how="left")
        distinct = rows.unique(["text_hash"], keep="first", maintain_order=True)
        cases = suite.filter(pl.col("app") == app)
        vectors = _matrix(distinct["embedding"])
        best = np.full(distinct.height, -1.0)
        if cases.height:
            best = (vectors @ _matrix(cases["embedding"]).T).max(axis=1)
        threshold = distinct["threshold"].fill_null(1.0).to_numpy()
        # an input the loop skipped (with its reason) is accounted for without a case
        skipped_hashes = set(
            graded.filter((pl.col("app") == app) & pl.col("decision").str.starts_with("skip:"))["text_hash"]
        )
        skipped = distinct["text_hash"].is_in(list(skipped_hashes)).to_numpy()
        uncovered = int(((best < threshold - 1e-6) & ~skipped).sum())
        decisions = graded.filter(pl.col("app") == app)["decision"].str.split(":").list.first()
        dup_sims = graded.filter((pl.col("app") == app) & pl.col("decision").str.starts_with("duplicate_of"))
        # clusters whose members are not all within the threshold of one of the cluster's representatives
        incoherent = 0
        far_members = 0
        clustered = rows.filter(pl.col("cluster_id") >= 0)
        for (_day, _cid), members in clustered.group_by("day", "cluster_id"):
            reps = members.filter(pl.col("is_representative"))
            if reps.height == 0:
                incoherent += 1
                far_members += members.height
                continue
            sims = (_matrix(members["embedding"]) @ _matrix(reps["embedding"]).T).max(axis=1)
            far = int((sims < members["threshold"].fill_null(1.0).to_numpy() - 1e-6).sum())
            far_members += far
            incoherent += far > 0
        report["apps"][app] = {
            "failing_traces": rows.height,
            "distinct_failing_inputs": distinct.height,
            "suite_cases": cases.height,
            "covered_at_threshold_used": int((best >= threshold - 1e-6).sum()),
            "skipped_with_reason": int((skipped & (best < threshold - 1e-6)).sum()),
            "uncovered_at_threshold_used": uncovered,
            "coverage": round(1 - uncovered / distinct.height, 4) if distinct.height else None,
            "uncovered_at_0.70": int(((best < FIXED) & ~skipped).sum()),
            "thresholds_used": sorted({round(float(t), 3) for t in threshold}),
            "graded_rows": int(decisions.len()),
            "decisions": {k: int((decisions == k).sum()) for k in ("promote", "duplicate_of", "skip")},
            "duplicate_similarity": _quantiles(dup_sims["nearest_similarity"].drop_nulls().to_list()),
            "clusters": int(clustered.select("day", "cluster_id").n_unique()),
            "clusters_with_far_members": incoherent,
            "members_far_from_every_representative": far_members,
            "exact_duplicate_cases": int(cases.height - cases["text_hash"].n_unique()),
        }
    report["sample_families"] = _families(con)
    con.close()
    return report


def _families(con: duckdb.DuckDBPyConnection) -> dict | None:
    """Cases per failure family of the bundled generator (metadata.scenario), when the corpus has them."""
    from loop_assets.devtools.sample_traffic import FAILURE_FAMILIES

    frame = con.execute(
        "SELECT json_extract_string(r.metadata, '$.scenario') AS family, count(*) AS cases FROM eval_suite e "
        "JOIN raw_traces r USING (trace_id, day) GROUP BY ALL ORDER BY family"
    ).pl()
    families = {f: c for f, c in zip(frame["family"], frame["cases"], strict=True) if f in FAILURE_FAMILIES}
    if not families:
        return None
    failing = con.execute(
        "SELECT DISTINCT json_extract_string(r.metadata, '$.scenario') AS family FROM scored_traces s "
        "JOIN raw_traces r USING (trace_id, day) WHERE s.is_failure"
    ).pl()
    seen = sorted(set(failing["family"].drop_nulls()) & set(FAILURE_FAMILIES))
    return {"families_failing": len(seen), "families_in_suite": len(families), "cases_per_family": families}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpora", nargs="*", type=Path, default=DEFAULT_CORPORA)
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the work folders (warehouses) and print them")
    args = parser.parse_args()
    results = {}
    for corpus in args.corpora:
        work = Path(tempfile.mkdtemp(prefix=f"fidelity-{corpus.name}-"))
        warehouse = run_loop(corpus, work)
        results[corpus.name] = measure(warehouse)
        print(json.dumps({corpus.name: results[corpus.name]}, indent=1))
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

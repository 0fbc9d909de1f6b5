"""How the tools' real exports come out of capture: per file, its LLM calls read right, wrong or quarantined.

    .venv/bin/python scripts/real_exports_report.py                 # the copies in loop_assets_tests/fixtures
    .venv/bin/python scripts/real_exports_report.py ../shared/fixtures/real-exports
    .venv/bin/python scripts/real_exports_report.py DIR --details   # every wrong field and quarantine reason
    .venv/bin/python scripts/real_exports_report.py --undated-day   # with ingest.undated_day set (2026-11-20)

Files listed in loop_assets_tests/fixtures/formats/real-exports/expected.json (matched by their path under
DIR) are checked call by call against it; any other file is read and counted (rows, quarantine reasons)
without a verdict. Ingest runs with `earliest_timestamp: 2000-01-01`: the files go back to 2024, and the
shipped floor (partitions_start) would quarantine them all as bad_timestamp.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loop_assets_tests.capture.formats.real_exports import (
    CFG,
    REAL_EXPORTS,
    UNDATED_CFG,
    UNDATED_DAY,
    expected,
    outcome,
    read,
    real_files,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", nargs="?", type=Path, default=REAL_EXPORTS)
    parser.add_argument("--details", action="store_true", help="print each wrong field and quarantine reason")
    parser.add_argument(
        "--undated-day", action="store_true", help=f"set ingest.undated_day to {UNDATED_DAY} (records with no time)"
    )
    args = parser.parse_args(argv)
    specs = expected()
    rows = []
    for rel in real_files(args.dir):
        result = read(args.dir / rel, cfg=UNDATED_CFG if args.undated_day else CFG)
        rows.append((outcome(rel, result, specs.get(rel), undated=args.undated_day), result))
    header = f"{'file':<62} {'format':<13} {'calls':>5} {'right':>5} {'wrong':>5} {'quar.':>5}  verdict"
    print(header)
    print("-" * len(header))
    totals = {"right": 0, "partly": 0, "rejected": 0}
    for out, result in rows:
        calls = "?" if out.expected_calls is None else str(out.expected_calls)
        quarantined = sum(out.quarantined.values())
        print(
            f"{out.file:<62} {','.join(out.formats) or '-':<13} {calls:>5} {len(out.right):>5} "
            f"{len(out.wrong) + len(out.missing):>5} {quarantined:>5}  {out.verdict}"
        )
        if out.expected_calls is not None:
            if not out.right:
                totals["rejected"] += 1
            elif out.verdict == "right":
                totals["right"] += 1
            else:
                totals["partly"] += 1
        if args.details:
            for key, problems in out.wrong.items():
                print(f"    wrong {key}: " + "; ".join(problems))
            for key in out.missing:
                print(f"    missing {key}")
            for line in out.unexpected:
                print(f"    unexpected {line}")
            for q in result.quarantine.iter_rows(named=True):
                print(f"    quarantined line {q['source_line']} {q['reason_code']}: {q['reason'][:200]}")
    print()
    print("per format (folder): files, LLM calls, read right, quarantined as expected (reason codes)")
    by_folder: dict[str, list] = {}
    for out, result in rows:
        by_folder.setdefault(out.file.split("/")[0] if "/" in out.file else "-", []).append((out, result))
    for folder, group in sorted(by_folder.items()):
        calls_n = sum(o.expected_calls or 0 for o, _ in group)
        right_n = sum(len(o.right) for o, _ in group)
        held_n = sum(len(o.quarantined_as_expected) for o, _ in group)
        codes: dict[str, int] = {}
        for o, _ in group:
            for code, n in o.quarantined.items():
                codes[code] = codes.get(code, 0) + n
        why = ", ".join(f"{n} {code}" for code, n in sorted(codes.items())) or "none"
        counts = f"{len(group):>3} files {calls_n:>4} calls {right_n:>4} right {held_n:>4} quarantined"
        print(f"  {folder:<14} {counts} ({why})")
    checked = [o for o, _ in rows if o.expected_calls is not None]
    calls = sum(o.expected_calls or 0 for o in checked)
    right = sum(len(o.right) for o in checked)
    held = sum(len(o.quarantined_as_expected) for o in checked)
    print()
    print(
        f"{len(checked)} files checked: {totals['right']} fully right, {totals['partly']} partly "
        f"(some calls read right, the rest quarantined or wrong), {totals['rejected']} with no call read"
    )
    other = calls - right - held
    print(f"{calls} LLM calls: {right} read right, {held} quarantined with the expected reason, {other} other")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

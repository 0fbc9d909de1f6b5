"""REPORT: what the loop built, for people: summaries, coverage, suite quality and lineage."""

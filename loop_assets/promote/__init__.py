"""PROMOTE: graded candidates to eval cases that carry their provenance, and the suite's invariants."""

"""The dedup threshold: how similar a failing input must be to a case to count as covered by it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def dedup_threshold(suite_size: int, schedule: Sequence[tuple[int, float]]) -> float:
    """Similarity threshold for an app with `suite_size` active cases: linear between points, flat outside.

    The schedule runs on the app's own suite: an app's first failure is judged at the empty-suite value
    whatever other apps hold.
    """
    sizes = [s for s, _ in schedule]
    values = [t for _, t in schedule]
    return round(float(np.interp(suite_size, sizes, values)), 6)


def strictest_threshold(schedule: Sequence[tuple[int, float]]) -> float:
    """The highest threshold the schedule can use: a member within it of a representative is within any."""
    return max(t for _, t in schedule)


def schedule_thresholds(schedule: Sequence[tuple[int, float]]) -> list[float]:
    """Every threshold the schedule names at its points, each once, lowest first."""
    return sorted({t for _, t in schedule})

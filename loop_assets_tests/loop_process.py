"""What a test needs to start the loop in a process of its own (the CLI, `dagster dev`, a run): a Dagster home
with the project's instance settings, and the process's environment."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from loop_assets_tests.paths import ROOT


def dagster_home(path: Path) -> Path:
    """`path` made a DAGSTER_HOME with the project's dagster.yaml."""
    path.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / ".dagster_home" / "dagster.yaml", path / "dagster.yaml")
    return path


def loop_env(home: Path, incoming: Path, warehouse: Path, **extra: str) -> dict[str, str]:
    """The environment of a loop process on these folders: offline, and with no EVAL_LOOP_ setting of the
    calling shell (`make test` exports some), so the test alone says how the loop runs."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("EVAL_LOOP_")}
    return {
        **inherited,
        "DAGSTER_HOME": str(home),
        "EVAL_LOOP_INCOMING": str(incoming),
        "EVAL_LOOP_WAREHOUSE": str(warehouse),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        **extra,
    }

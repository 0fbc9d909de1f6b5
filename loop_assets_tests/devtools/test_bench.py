"""`eval-loop bench` smoke test: a 2,000-trace day runs end to end and its JSON has every field (timings are
not asserted: they are measurements, printed by `make bench`)."""

import json

import numpy as np
import pytest

from loop_assets.cli import build_parser
from loop_assets.dedup.backends import BACKENDS
from loop_assets.devtools import bench


def test_decisions_are_per_text_against_earlier_texts_of_the_same_app():
    v = np.array([[1, 0], [1, 0], [0, 1], [0.8, 0.6]], dtype=np.float32)
    apps = ["a", "a", "a", "b"]
    # second text repeats the first; the third is new; the fourth is alone in its app
    assert bench.duplicate_decisions(v, apps, 0.9).tolist() == [False, True, False, False]
    assert bench.decision_agreement(v, v, apps, [0.7, 0.9]) == 1.0
    flipped = v.copy()
    flipped[1] = [0, 1]
    assert bench.decision_agreement(v, flipped, apps, [0.9]) == 0.5  # text 1 and text 2 change decision


def test_missing_fields_names_what_a_result_lacks():
    assert "machine" in bench.missing_fields({})
    assert "targets.rerun_share" in bench.missing_fields({"targets": {}})


def test_the_command_line_has_bench():
    args = build_parser().parse_args(["bench", "--traces", "2000"])
    assert args.traces == 2000 and args.func.__name__ == "cmd_bench"
    assert build_parser().parse_args(["bench"]).traces == bench.DEFAULT_TRACES


@pytest.mark.slow
def test_a_small_bench_completes_and_writes_every_field(tmp_path):
    lines: list[str] = []
    result = bench.run_bench(traces=2_000, out_dir=tmp_path, baseline_cap=200, hdbscan_cap=200, log=lines.append)
    assert bench.missing_fields(result) == []
    written = json.loads((tmp_path / "bench-2000.json").read_text())
    assert bench.missing_fields(written) == []
    assert [s["stage"] for s in written["first_run"]["stages"]] == list(bench.STAGES)
    assert written["traffic"]["failures"] > 0 and written["first_run"]["stages"][2]["embedded"] > 0
    assert written["rerun"]["embedded"] == 0  # the same day again is served from the cache
    assert written["default_backend"] in BACKENDS and set(written["backends"]) == set(BACKENDS)
    table = (tmp_path / "bench-2000.md").read_text()
    for heading in ("first run", "same day again", "baselines", "embedding backends", "targets"):
        assert heading in table
    assert any("| ingest |" in line for line in lines)


def test_the_recommended_backend_is_the_fastest_that_agrees():
    figures = {
        "torch": {"texts_per_s": 20.0, "agreement": 1.0},
        "onnx": {"texts_per_s": 60.0, "agreement": 0.98},
        "openvino": {"texts_per_s": 50.0, "agreement": 0.995},
    }
    assert bench.recommended_backend(figures) == "openvino"
    figures["openvino"]["agreement"] = 0.9
    assert bench.recommended_backend(figures) == "torch"

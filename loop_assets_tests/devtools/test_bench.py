"""`eval-loop bench` smoke test: a 2,000-trace day runs end to end and its JSON has every field (timings are
not asserted: they are measurements, printed by `make bench`)."""

import json
from pathlib import Path

import numpy as np
import pytest

from loop_assets.cli import build_parser
from loop_assets.dedup import backend_choice
from loop_assets.dedup.backends import BACKENDS
from loop_assets.dedup.embedding import resolve_model_path
from loop_assets.devtools import bench
from loop_assets_tests.paths import REALDATA


def test_decisions_are_per_text_against_earlier_texts_of_the_same_app():
    v = np.array([[1, 0], [1, 0], [0, 1], [0.8, 0.6]], dtype=np.float32)
    apps = ["a", "a", "a", "b"]
    # second text repeats the first; the third is new; the fourth is alone in its app
    assert backend_choice.duplicate_decisions(v, apps, 0.9).tolist() == [False, True, False, False]
    assert backend_choice.decision_agreement(v, v, apps, [0.7, 0.9]) == 1.0
    flipped = v.copy()
    flipped[1] = [0, 1]
    assert backend_choice.decision_agreement(v, flipped, apps, [0.9]) == 0.5  # text 1 and text 2 change decision


def test_ratios_come_from_interleaved_repetitions_as_a_median_with_its_spread():
    calls: list[str] = []
    baseline_seconds = iter([4.0, 9.0, 5.0])  # the machine got busy during the second repetition ...
    ours_seconds = iter([2.0, 3.0, 2.0])  # ... and both sides of that repetition felt it

    def side(name, seconds):
        return lambda: calls.append(name) or next(seconds)

    runs = backend_choice.interleaved([("a", side("a", baseline_seconds)), ("b", side("b", ours_seconds))], 3)
    assert calls == ["a", "b", "a", "b", "a", "b"]
    figures = bench._ratio_figures(runs, "a", "b")
    assert figures["ratios"] == [2.0, 3.0, 2.5] and figures["ratio"] == 2.5
    assert (figures["ratio_min"], figures["ratio_max"], figures["repeats"]) == (2.0, 3.0, 3)
    assert (figures["seconds"], figures["eval_loop_seconds"]) == (5.0, 2.0)
    assert len(figures["load_average"]) == 2


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
    result = bench.run_bench(
        traces=2_000,
        out_dir=tmp_path,
        baseline_cap=200,
        hdbscan_cap=200,
        log=lines.append,
        repeats=2,
        speed_texts=50,
        real_data=REALDATA,
        real_cap=80,
    )
    assert bench.missing_fields(result) == []
    written = json.loads((tmp_path / "bench-2000.json").read_text())
    assert bench.missing_fields(written) == []
    assert [s["stage"] for s in written["first_run"]["stages"]] == list(bench.STAGES)
    assert written["traffic"]["failures"] > 0 and written["first_run"]["stages"][2]["embedded"] > 0
    assert written["rerun"]["embedded"] == 0  # the same day again is served from the cache
    assert written["default_backend"] in BACKENDS and set(written["backends"]) == set(BACKENDS)
    for name, figures in written["baselines"].items():
        assert len(figures["ratios"]) == 2 and figures["ratio_min"] <= figures["ratio"] <= figures["ratio_max"], name
    assert written["backends"]["torch"]["speedup_vs_torch"] == 1.0 and written["backends"]["torch"]["repeats"] == 2
    if REALDATA.is_dir():
        assert written["backends"]["openvino"]["real_texts"] == 80
        assert written["backends"]["openvino"]["agreement_real"] is not None
    assert set(written["machine"]["cpu_features"]) == set(backend_choice.CPU_FEATURES)
    assert written["auto_backend"]["chosen"] == backend_choice.auto_backend(resolve_model_path("all-MiniLM-L6-v2"))
    table = (tmp_path / "bench-2000.md").read_text()
    for heading in ("first run", "same day again", "baselines", "embedding backends", "targets", "CPU features"):
        assert heading in table
    assert any("| ingest |" in line for line in lines)


def test_the_recommended_backend_is_the_fastest_that_agrees():
    figures = {
        "torch": {"texts_per_s": 20.0, "agreement": 1.0},
        "onnx": {"texts_per_s": 60.0, "agreement": 0.98},
        "openvino": {"texts_per_s": 50.0, "agreement": 0.995},
    }
    assert bench.recommended_backend(figures) == "openvino"
    figures["onnx"] |= {"agreement": 0.995, "batch_drift": 0.04}  # its vectors move with their batch
    assert bench.recommended_backend(figures) == "openvino"
    figures["openvino"]["agreement_real"] = 0.985  # agreeing on generated text is not enough
    assert bench.recommended_backend(figures) == "torch"
    figures["openvino"] |= {"agreement": 0.9, "agreement_real": None}
    assert bench.recommended_backend(figures) == "torch"


def test_the_machine_says_which_cpu_features_it_saw():
    m = bench.machine()
    assert m["cpu"] and m["cores"] >= 1 and m["load_average_1m"] is not None
    assert set(m["cpu_features"]) == {"AVX2", "AVX-512", "AVX-512 VNNI", "AVX-VNNI", "AMX"}
    assert all(v in (True, False, None) for v in m["cpu_features"].values())
    if m["cpu_features_source"] == "/proc/cpuinfo":
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        flags = next(line for line in lines if line.startswith("flags")).split()
        assert m["cpu_features"]["AVX2"] == ("avx2" in flags)

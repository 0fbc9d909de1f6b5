"""Where the tests find the project, their fixtures and the real corpora, wherever a test file sits."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "loop_assets_tests" / "fixtures"
REALDATA = ROOT.parent / "shared" / "realdata"
SAMPLE_DIR = ROOT / "data" / "sample"
CONFIG_FILE = ROOT / "loop_assets" / "eval_loop.yaml"

"""The Dagster UI in a real browser: Debian's chromium, driven by Playwright, opens a test instance where the
loop ran over a few days as one range run, and finds the asset graph, eval_suite's lineage table and the
per-day figures that scored_traces' plot of "traces" draws, each checked against the warehouse.

Screenshots go to the test's tmp folder; a failure names it. What the checks look for in the page is in
`Ui` below, in one place.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest

from loop_assets.defs.assets.capture import raw_traces
from loop_assets_tests.defs import ui_instance
from loop_assets_tests.loop_runner import START

try:
    from playwright import sync_api
except ImportError:  # a venv set up before playwright joined the dev extras
    sync_api = None

LOOP_ASSETS = ("raw_traces", "scored_traces", "failure_clusters", "graded_candidates", "eval_suite")
WAIT_MS = 90_000
"""Ceiling on each wait for the page (two shared cores): a wait, not a timing assertion."""


class Ui:
    """Where the checks look in the Dagster UI (1.13): URLs, metadata keys and locators."""

    GRAPH = "/asset-groups"  # the global asset lineage graph
    EXPAND_ALL_GROUPS = "Alt+e"  # the graph's shortcut for "Expand all groups" (several groups start collapsed)
    ASSET = "/assets/{asset}"
    PARTITION = "/assets/{asset}?view=partitions&partition={day}"  # one day's latest materialisation
    LINEAGE_KEY = "lineage"  # eval_suite's markdown table of case ids and their file:line
    LINEAGE_CASE = "case_id"  # its column header of the case id
    LINEAGE_SOURCE = "file"  # part of its column header of file:line
    PLOT_KEY = "traces"  # scored_traces' figure plotted per day
    SHOW_MARKDOWN = "[Show Markdown]"

    @staticmethod
    def graph_node(page, name: str):
        return page.locator("svg").get_by_text(name, exact=True)

    @staticmethod
    def metadata_row(page, key: str):
        """The row of a metadata table whose key is exactly `key`."""
        return page.get_by_role("row").filter(has=page.get_by_text(key, exact=True))

    @staticmethod
    def plot(page, key: str):
        """The chart of metadata `key` in the asset's Metadata section: its title's nearest block with a canvas."""
        return page.get_by_text(key, exact=True).locator("xpath=ancestor::div[.//canvas][1]")

    @staticmethod
    def metadata_switch(page, label: str):
        """A switch of the asset's Metadata section: "Table" or "Plots", and for plots the x-axis,
        "Partitions" (one point per day) or "Events"."""
        return page.get_by_role("button").filter(has_text=re.compile(rf"^\s*{label}\s*$"))


def chromium() -> str:
    """The system chromium for Playwright; a skip that says how to install what is missing (a failure in CI,
    which must run this test)."""
    path = shutil.which("chromium")
    missing = []
    if sync_api is None:
        missing.append("Playwright for Python (a dev dependency): `make setup` or pip install -e '.[dev]'")
    if path is None:
        missing.append(
            "Debian's chromium (Playwright drives it; `playwright install` downloads cannot be used here): "
            "as root run `apt-get install -y --no-install-recommends chromium` (.ci/run does)"
        )
    if missing:
        reason = "; ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser test, but it lacks {reason}")
        pytest.skip(f"needs {reason}")
    return path


@pytest.fixture(scope="module")
def ui(tmp_path_factory) -> Iterator[ui_instance.UiInstance]:
    chromium()  # skip before minutes of setup when there is no browser
    instance = ui_instance.build(tmp_path_factory.mktemp("ui"), days=3, per_day=80, start=START)
    ui_instance.start_webserver(instance)
    try:
        instance.graphql("mutation { setNuxSeen }")  # the community pop-up a fresh instance shows on 127.0.0.1
        yield instance
    finally:
        ui_instance.stop_webserver(instance)


@pytest.fixture(scope="module")
def browser(ui):
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium())
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(ui, browser):
    context = browser.new_context(base_url=ui.url, viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        yield page
    finally:
        context.close()


@contextmanager
def screenshots(page, out: Path, ui) -> Iterator:
    """`shot(name)` saves a screenshot into `out`; a failure saves one more and names the folder."""

    def shot(name: str) -> None:
        page.screenshot(path=out / f"{name}.png", full_page=True)

    try:
        yield shot
    except BaseException as exc:
        try:
            shot("failure")
        finally:
            exc.add_note(f"screenshots: {out}; webserver log: {ui.log}")
        raise


@pytest.mark.slow
def test_the_asset_graph_shows_every_asset_of_the_loop(ui, page, tmp_path):
    with screenshots(page, tmp_path, ui) as shot:
        page.goto(Ui.GRAPH)
        first = Ui.graph_node(page, LOOP_ASSETS[0])
        # the graph is drawn once the first asset's node is, or its group's while groups are collapsed
        group = Ui.graph_node(page, raw_traces.group_names_by_key[dg.AssetKey(LOOP_ASSETS[0])])
        sync_api.expect(group.or_(first).first).to_be_visible(timeout=WAIT_MS)
        if not first.count():
            page.keyboard.press(Ui.EXPAND_ALL_GROUPS)
        for asset in LOOP_ASSETS:
            sync_api.expect(Ui.graph_node(page, asset)).to_be_visible(timeout=WAIT_MS)
        shot("asset-graph")


@pytest.mark.slow
def test_eval_suite_page_shows_the_lineage_of_every_case_to_its_file_and_line(ui, page, tmp_path):
    suite = dict(ui.query("SELECT case_id, source_file || ':' || source_line FROM eval_suite WHERE status = 'active'"))
    assert suite, "the range run promoted no case: nothing for the lineage table to show"
    with screenshots(page, tmp_path, ui) as shot:
        page.goto(Ui.ASSET.format(asset="eval_suite"))
        row = Ui.metadata_row(page, Ui.LINEAGE_KEY)
        row.get_by_text(Ui.SHOW_MARKDOWN).click()
        table = page.get_by_role("dialog").get_by_role("table")
        sync_api.expect(table).to_be_visible(timeout=WAIT_MS)
        header = table.get_by_role("row").first.get_by_role("columnheader").all_inner_texts()
        case, where = header.index(Ui.LINEAGE_CASE), next(i for i, h in enumerate(header) if Ui.LINEAGE_SOURCE in h)
        cells = [r.get_by_role("cell").all_inner_texts() for r in table.get_by_role("row").all()[1:]]
        shown = {c[case].strip(): c[where].strip() for c in cells}
        shot("eval-suite-lineage")
    assert shown == suite


@pytest.mark.slow
def test_scored_traces_plots_traces_per_day_and_each_day_shows_its_own_count(ui, page, tmp_path):
    per_day = {str(day): n for day, n in ui.query("SELECT day, count(*) FROM scored_traces GROUP BY day")}
    assert len(per_day) >= 3, per_day
    with screenshots(page, tmp_path, ui) as shot:
        page.goto(Ui.ASSET.format(asset="scored_traces"))
        for label in ("Plots", "Partitions"):
            switch = Ui.metadata_switch(page, label)
            switch.click()
            sync_api.expect(switch).to_have_attribute("aria-selected", "true", timeout=WAIT_MS)
        plot = Ui.plot(page, Ui.PLOT_KEY)
        plot.scroll_into_view_if_needed()
        canvas = plot.locator("canvas")
        sync_api.expect(canvas).to_have_count(1, timeout=WAIT_MS)
        # drawn: chart.js paints the axes and the line into the canvas, which a blank one would not have
        painted = "c => c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some((v, i) => i % 4 == 3 && v)"
        page.wait_for_function(painted, arg=canvas.element_handle())
        shot("scored-traces-plots")
        shown = {}
        for day in per_day:
            page.goto(Ui.PARTITION.format(asset="scored_traces", day=day))
            value = Ui.metadata_row(page, Ui.PLOT_KEY).get_by_role("cell").nth(1)
            sync_api.expect(value).to_have_text(re.compile(r"^\s*\d+\s*$"), timeout=WAIT_MS)
            shown[day] = int(value.inner_text())
            shot(f"scored-traces-{day}")
    assert shown == per_day

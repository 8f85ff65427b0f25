"""A tiled negative in the console's strip, in a real browser (Debian's headless Chromium through Selenium, as
tests/test_console_browser.py drives it): one card for the negative, with its tiles and the positive of the
stitched DNG, none for its tile stacks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from medianscan.library.rolls import Library
from tests.daemon_thread import RunningDaemon, capture_config
from tests.sheet_stage import save_true_calibration, strip_on
from tests.test_console_browser import browser, console_errors, spread, text_of
from tests.tiled_negatives import make_tiled_negative
from tests.tiles import load_picture

pytestmark = pytest.mark.slow  # a real daemon and browser, blends and a stitch

__all__ = ["browser"]  # the fixture, used by name


def clicked(driver: WebDriver, testid: str) -> bool:
    driver.find_element(By.CSS_SELECTOR, f"[data-testid={testid}]").click()
    return True


BROKEN = "return [...document.querySelectorAll('#frames img')].filter((i) => !(i.complete && i.naturalWidth)).length"


def test_the_strip_shows_a_tiled_negative_once_with_its_tiles_and_the_stitched_positive(
    sample_raw: Path,
    tmp_path: Path,
    browser: WebDriver,
) -> None:
    """Its tile stacks captured before a stop: the start blends them and stitches the negative; the strip then
    has one card, `stitched`, `4 tiles stitched`, its positive drawn, and the last-blend panel shows it."""
    cfg = capture_config(tmp_path / "library")
    roll = Library.from_config(cfg).new_roll()
    make_tiled_negative(roll / "frame-001", load_picture(sample_raw), (2, 2), manifest=True)
    with RunningDaemon(cfg) as running:
        browser.get(running.url)
        wait = WebDriverWait(browser, 120, poll_frequency=0.2)
        stitched = "[data-testid=frames] > li[data-state=stitched]"
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, stitched)) == 1, "frame-001 stitched")
        items = browser.find_elements(By.CSS_SELECTOR, "[data-testid=frames] > li")
        assert [i.get_attribute("data-name") for i in items] == ["frame-001"]  # no card for a tile
        assert "4 tiles stitched" in items[0].text
        wait.until(lambda d: d.execute_script(BROKEN) == 0, "the stitched negative's positive loaded")
        wait.until(lambda d: spread(d, "last-blend") > 10, "the positive of the stitched negative, not blank")
        assert "stitched from 4 tiles" in text_of(browser, "last-caption")
        assert console_errors(browser) == []


def test_the_whole_strip_box_runs_a_strip_shown_negative_by_negative_tile_by_tile_then_stitched(
    tmp_path: Path, browser: WebDriver
) -> None:
    """The console's 'whole strip' box ticked and Scan tiles pressed: the daemon shoots a simulated strip of two 6x7
    negatives in 2x2 tiles (tests/sheet_stage's brisk stage), the page says which negative and which tile as the
    run goes and colours the plan's map, and shows both negatives stitched once the strip ended. The screenshots
    (mid-run and at the end) are kept in tmp_path for a look."""
    cfg = strip_on(tmp_path, negatives=2).cfg
    cfg.frames, cfg.tiles.strip = 3, False  # the box asks for the strip, not the config
    save_true_calibration(cfg)
    with RunningDaemon(cfg) as running:
        browser.get(running.url)
        # the page redraws the panel on each status poll: an element may go stale under the finger, tried again
        wait = WebDriverWait(browser, 150, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,))
        wait.until(lambda d: d.find_element(By.ID, "scan-tiles").is_displayed(), "Scan tiles on an XY stage")
        assert not browser.find_element(By.CSS_SELECTOR, "[data-testid=tiles-strip]").is_selected()
        wait.until(lambda d: clicked(d, "tiles-strip"), "the 'whole strip' box ticked")
        assert browser.find_element(By.CSS_SELECTOR, "[data-testid=tiles-strip]").is_selected()
        wait.until(lambda d: clicked(d, "scan-tiles"), "Scan tiles pressed")
        seen: list[str] = []
        shot = tmp_path / "strip-running.png"

        def second_under_way(d: WebDriver) -> bool:
            said = text_of(d, "tile-run")
            if said and said not in seen:
                seen.append(said)
            states = [c.get_attribute("data-state") for c in d.find_elements(By.CSS_SELECTOR, "#tile-map span")]
            going = said.startswith("tile run frame-002: negative 2 on the strip: ") and "shot" in states
            if going and not shot.exists():
                d.save_screenshot(str(shot))
            return going

        wait.until(second_under_way, "the second negative under way, said on the page")
        wait.until(lambda d: "the strip ended after 2 negatives" in text_of(d, "answer"), "the strip's end")
        assert any(re.match(r"tile run frame-001: negative 1 on the strip: \d of 4 tiles shot; (settling|shooting) "
                            r"tile-r\dc\d", s) for s in seen), seen  # fmt: skip
        wait.until(lambda d: text_of(d, "tile-run").startswith("last tile run frame-002: "), "the run over")
        assert browser.find_element(By.CSS_SELECTOR, "[data-testid=stop-tiles]").is_displayed() is False
        stitched = "[data-testid=frames] > li[data-state=stitched]"
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, stitched)) == 2, "both negatives stitched")
        items = browser.find_elements(By.CSS_SELECTOR, "[data-testid=frames] > li")
        assert [i.get_attribute("data-name") for i in items] == ["frame-001", "frame-002"]  # no card for a tile
        assert all("4 tiles stitched" in i.text for i in items)
        wait.until(lambda d: d.execute_script(BROKEN) == 0, "the stitched negatives' positives loaded")
        wait.until(lambda d: spread(d, "last-blend") > 10, "the positive of the last stitched negative")
        browser.execute_script("window.scrollTo(0, 0)")
        browser.save_screenshot(str(tmp_path / "strip-done.png"))
        assert shot.is_file() and console_errors(browser) == []

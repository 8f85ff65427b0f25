"""A tiled negative in the console's strip, in a real browser (Debian's headless Chromium through Selenium, as
tests/test_console_browser.py drives it): one card for the negative, with its tiles and the positive of the
stitched DNG, none for its tile stacks."""

from __future__ import annotations

from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from medianscan.library.rolls import Library
from tests.daemon_thread import RunningDaemon, capture_config
from tests.test_console_browser import browser, console_errors, spread, text_of
from tests.tiled_negatives import make_tiled_negative
from tests.tiles import load_picture

pytestmark = pytest.mark.slow  # a real daemon and browser, blends and a stitch

__all__ = ["browser"]  # the fixture, used by name

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

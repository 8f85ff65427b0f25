"""The console end to end in a real browser: Debian's headless Chromium driven by Selenium through its
chromedriver, against a real daemon on the simulated camera. It sees live view, captures with the button and the
space bar, watches each negative reach `blended` and checks that its positive is a picture.

With MEDIANSCAN_SCREENSHOT=PATH it also writes the README's screenshot there (`make screenshot`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.daemon_thread import RunningDaemon, capture_config

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# As root on a machine with no network: no sandbox, and nothing that phones home (its refused connections).
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)
IMAGE_SPREAD = """
const img = arguments[0];
if (!img.complete || !img.naturalWidth) return -1;
const c = document.createElement('canvas'); c.width = 64; c.height = 48;
const g = c.getContext('2d'); g.drawImage(img, 0, 0, 64, 48);
const d = g.getImageData(0, 0, 64, 48).data; let s = 0, s2 = 0, n = 0;
for (let i = 0; i < d.length; i += 4) { const v = (d[i] + d[i+1] + d[i+2]) / 3; s += v; s2 += v * v; n++; }
return Math.sqrt(s2 / n - (s / n) ** 2);
"""


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: `make test` installs Debian's chromium and chromium-driver")
    profile = tempfile.mkdtemp(prefix="ms-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def spread(driver: WebDriver, testid: str) -> float:
    """The standard deviation of an image element's pixels as the browser drew them (-1: not loaded)."""
    element = driver.find_element(By.CSS_SELECTOR, f"[data-testid={testid}]")
    return float(driver.execute_script(IMAGE_SPREAD, element))


def test_the_console_in_a_browser_shows_live_view_captures_and_shows_the_positive(
    tmp_path: Path, browser: WebDriver
) -> None:
    cfg = capture_config(tmp_path / "library")
    cfg.camera.simulated.preview_focus_period_seconds = 4.0  # a whole sweep through focus while the test runs
    with RunningDaemon(cfg) as running:
        opened = time.monotonic()
        browser.get(running.url)
        wait = WebDriverWait(browser, 60, poll_frequency=0.2)
        wait.until(lambda d: spread(d, "live") > 1, "a live image")  # the MJPEG stream, drawn
        wait.until(
            lambda d: "of peak" in d.find_element(By.CSS_SELECTOR, "[data-testid=focus]").text, "the focus meter"
        )
        assert "connected" in browser.find_element(By.ID, "connection").text
        assert "medianscan simulated camera" in browser.find_element(By.CSS_SELECTOR, "[data-testid=camera]").text

        browser.find_element(By.CSS_SELECTOR, "[data-testid=capture]").click()
        blended = "[data-testid=frames] > li[data-state=blended]"
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, blended)) == 1, "frame-001 blended")
        assert "frame-001: burst done, 3 frames" in browser.find_element(By.CSS_SELECTOR, "[data-testid=answer]").text
        wait.until(lambda d: spread(d, "last-blend") > 10, "the positive of frame-001, not blank")

        browser.find_element(By.TAG_NAME, "body").send_keys(Keys.SPACE)  # the space bar captures too
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, blended)) == 2, "frame-002 blended")
        items = browser.find_elements(By.CSS_SELECTOR, "[data-testid=frames] > li")
        assert [i.get_attribute("data-name") for i in items] == ["frame-001", "frame-002"]
        assert "x cleaner" in items[1].text and "3 of 3 frames used" in items[1].text
        wait.until(lambda d: d.find_element(By.ID, "last-blend").get_attribute("data-name") == "frame-002")

        live = browser.find_element(By.CSS_SELECTOR, "[data-testid=live]")
        browser.execute_script("window.scrollTo(0, 0)")
        webdriver.ActionChains(browser).move_to_element_with_offset(live, 60, -40).click().perform()
        wait.until(lambda d: float(d.execute_script(IMAGE_SPREAD, d.find_element(By.ID, "loupe"))) > 0, "the loupe")
        wait.until(lambda d: spread(d, "last-blend") > 10, "the positive of frame-002")

        # the simulated focus drifts: after one whole sweep the meter's peak is the sharp view; take the picture then
        focus = "[data-testid=focus]"
        time.sleep(max(0.0, 4.5 - (time.monotonic() - opened)))
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, focus).text.split(" ")[0].isdigit(), "a focus figure")
        wait.until(lambda d: int(d.find_element(By.CSS_SELECTOR, focus).text.split(" ")[0]) >= 95, "sharp focus")

        shot = tmp_path / "console.png"
        browser.execute_script("window.scrollTo(0, 0)")
        browser.save_screenshot(str(shot))
        picture = imagecodecs.png_decode(shot.read_bytes()).astype(np.float32)
        assert picture.shape[:2] == (1000, 1400) or picture.shape[1] == 1400
        assert picture.std() > 20  # the page, not an empty window
        target = os.environ.get("MEDIANSCAN_SCREENSHOT")
        if target:
            shutil.copyfile(shot, target)

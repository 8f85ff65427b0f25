"""The console end to end in a real browser: Debian's headless Chromium driven by Selenium through its
chromedriver, against a real daemon on the simulated camera. It sees live view, captures with the button and the
space bar, watches each negative reach `blended` and checks that its positive is a picture; at a laptop's
1024x700 and at 1400x1000 everything needed while focusing and shooting is on screen, uncovered, and each event
is said once, coloured by what it is.

With MEDIANSCAN_SCREENSHOT=PATH it also writes the README's screenshot (1024x700) there (`make screenshot`).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from medianscan.library.manifest import State
from tests.daemon_thread import RunningDaemon, capture_config

pytestmark = pytest.mark.slow  # real editors, browsers or whole processes: `make test-fast` leaves it out

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
SIZES = ((1024, 700), (1400, 1000))  # a laptop beside the copy stand; a desktop screen
# Where each element is and whether it is the one drawn at its centre (nothing covers it).
ON_SCREEN = """
const out = {};
for (const selector of arguments[0]) {
  const e = document.querySelector(selector);
  if (!e) { out[selector] = 'missing'; continue; }
  const r = e.getBoundingClientRect();
  const inside = r.width > 0 && r.height > 0 && r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight + 0.5
    && r.right <= innerWidth + 0.5;
  const top = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  out[selector] = !inside ? 'outside' : (top === e || e.contains(top)) ? 'shown' : 'covered';
}
return out;
"""
# Lines of the roll strip's cards that wrap onto a second line.
WRAPPED = """
return [...document.querySelectorAll('#frames li > div')].filter((d) =>
  d.getBoundingClientRect().height > 1.5 * parseFloat(getComputedStyle(d).lineHeight)).map((d) => d.textContent);
"""
# Images shown without a picture (the browser's broken-image placeholder).
BROKEN = """
return [...document.querySelectorAll('img')].filter((i) => i.offsetParent !== null && !(i.complete && i.naturalWidth))
  .map((i) => i.id || i.alt);
"""
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
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the page's console, for console_errors
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def viewport(driver: WebDriver, size: tuple[int, int]) -> None:
    """The page's own size (a window's includes its frame): what a laptop's browser shows at 1024x700."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": False},
    )


def console_errors(driver: WebDriver) -> list[str]:
    """What the page's console logged as errors since the last call: a content-security-policy refusal, a failed
    load, a script error."""
    chrome = typing.cast(webdriver.Chrome, driver)  # the log is Chromium's, not the W3C protocol's
    entries: list[dict[str, Any]] = chrome.get_log("browser")  # type: ignore[no-untyped-call]
    return [str(entry["message"]) for entry in entries if entry["level"] == "SEVERE"]


def text_of(driver: WebDriver, testid: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, f"[data-testid={testid}]").text)


def banners(driver: WebDriver) -> list[str]:
    """The banners' texts, read in one call in the page: the page redraws them on each status poll, so an element
    found in one call may be gone by the next (a stale element)."""
    said = driver.execute_script(
        "return [...document.querySelectorAll('[data-testid=banners] > div')].map(e => e.innerText)"
    )
    return [str(text) for text in said]


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
        viewport(browser, SIZES[0])
        browser.get(running.url)
        wait = WebDriverWait(browser, 60, poll_frequency=0.2)
        wait.until(lambda d: spread(d, "live") > 1, "a live image")  # the MJPEG stream, drawn
        wait.until(
            lambda d: "of peak" in d.find_element(By.CSS_SELECTOR, "[data-testid=focus]").text, "the focus meter"
        )
        assert not browser.find_element(By.CSS_SELECTOR, "[data-testid=connection]").is_displayed()  # linked
        assert "medianscan simulated camera: ready" in text_of(browser, "camera")
        assert not browser.find_element(By.CSS_SELECTOR, "[data-testid=answer]").is_displayed()  # nothing said yet

        browser.find_element(By.CSS_SELECTOR, "[data-testid=capture]").click()
        blended = "[data-testid=frames] > li[data-state=blended]"
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, blended)) == 1, "frame-001 blended")
        said = text_of(browser, "answer")
        assert "frame-001: burst done, 3 frames" in said and said.endswith(" (Capture button)"), said  # its source
        wait.until(lambda d: spread(d, "last-blend") > 10, "the positive of frame-001, not blank")

        browser.find_element(By.TAG_NAME, "body").send_keys(Keys.SPACE)  # the space bar captures too
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, blended)) == 2, "frame-002 blended")
        wait.until(lambda d: text_of(d, "answer").endswith("(space bar)"), "the space bar named as the source")
        assert text_of(browser, "answer").startswith("frame-002: burst done")
        items = browser.find_elements(By.CSS_SELECTOR, "[data-testid=frames] > li")
        assert [i.get_attribute("data-name") for i in items] == ["frame-001", "frame-002"]
        assert "x cleaner" in items[1].text and "3 of 3 frames used" in items[1].text
        wait.until(lambda d: d.find_element(By.ID, "last-blend").get_attribute("data-name") == "frame-002")
        caption = text_of(browser, "last-caption")
        assert re.search(r"\d\.\dx cleaner than one raw", caption) and "x noise" not in caption, caption  # once

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
        assert picture.shape[:2] == (700, 1024)
        assert picture.std() > 20  # the page, not an empty window
        target = os.environ.get("MEDIANSCAN_SCREENSHOT")
        if target:
            shutil.copyfile(shot, target)
        assert console_errors(browser) == []  # no CSP refusal (the icon), no failed load, no script error


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_everything_for_focusing_and_shooting_is_on_screen_and_each_event_said_once(
    tmp_path: Path, browser: WebDriver, size: tuple[int, int]
) -> None:
    """At both sizes, with a roll of negatives in the strip: live view, the focus meter, the buttons, the answer,
    what is next and the strip are all on screen and none covers another; the page does not scroll; the strip's
    lines do not wrap (a clipped raw included). Pausing is said once, as done (not an error), beside a paused badge;
    a footswitch's press is shown like a click's, naming its source. The screenshots are kept for a look."""
    cfg = capture_config(tmp_path / "library")
    cfg.camera.simulated.light = 3.0  # the film base clips: the cards carry a clipping line
    with RunningDaemon(cfg) as running:
        for number in (1, 2, 3, 4):
            running.ask("capture")
            running.wait_for_state(f"frame-00{number}", State.BLENDED)
        viewport(browser, size)
        browser.get(running.url)
        wait = WebDriverWait(browser, 60, poll_frequency=0.2)
        wait.until(lambda d: spread(d, "live") > 1, "a live image")
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "[data-testid=frames] > li")) == 4, "the strip")
        wait.until(lambda d: "of peak" in text_of(d, "focus"), "the focus meter")
        assert console_errors(browser) == []  # the page loads clean: no CSP refusal, no failed load
        wanted = ["#live", ".bar", "[data-testid=focus]", "[data-testid=capture]", "[data-testid=pause]",
                  "[data-testid=base]", "[data-testid=next]", "[data-testid=roll-folder]",
                  "[data-testid=frames] > li:last-child"]  # fmt: skip
        assert browser.execute_script(ON_SCREEN, wanted) == dict.fromkeys(wanted, "shown")
        assert browser.execute_script("return document.documentElement.scrollHeight <= innerHeight")
        assert browser.execute_script(WRAPPED) == []
        assert "clipped R" in text_of(browser, "frames")
        assert text_of(browser, "next") == "frame-005"
        assert text_of(browser, "roll-folder") == str(running.daemon.library.current_roll())
        assert text_of(browser, "flat-field") == "none (Flat field shoots one)"
        assert browser.execute_script(BROKEN) == []

        browser.find_element(By.CSS_SELECTOR, "[data-testid=pause]").click()
        wait.until(lambda d: "paused: captures are ignored until resume" in text_of(d, "answer"), "the pause said")
        time.sleep(1.0)  # a state or two later: still said once
        answer = browser.find_element(By.CSS_SELECTOR, "[data-testid=answer]")
        assert answer.get_attribute("class") == "done"
        assert browser.find_elements(By.CSS_SELECTOR, "[data-testid=banners] > div") == []
        assert browser.find_element(By.CSS_SELECTOR, "[data-testid=paused]").is_displayed()
        assert text_of(browser, "pause") == "Resume"
        page = browser.find_element(By.TAG_NAME, "body").text
        assert page.count("ignored until resume") == 1, page

        running.ask("capture")  # the pedal, while paused
        wait.until(lambda d: "capture ignored: the daemon is paused" in text_of(d, "answer"), "the ignored press")
        assert answer.get_attribute("class") == "ignored" and "(test)" in text_of(browser, "answer")
        shot = tmp_path / f"console-{size[0]}.png"
        browser.save_screenshot(str(shot))
        picture = imagecodecs.png_decode(shot.read_bytes())
        assert picture.shape[:2] == (size[1], size[0]) and picture.std() > 20
        assert console_errors(browser) == []
        if os.environ.get("MEDIANSCAN_SHOTS"):  # for a look by eye
            shutil.copy(shot, Path(os.environ["MEDIANSCAN_SHOTS"]) / shot.name)


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_a_refused_setting_is_one_banner_and_live_view_still_runs(
    tmp_path: Path, browser: WebDriver, size: tuple[int, int]
) -> None:
    """A shutter speed the body does not offer: the body is connected (live view runs, for focusing) but captures
    are refused. One banner names the setting, the five speeds nearest it (not all 37) and the reload that works
    (SIGHUP: no "Ctrl-C and run again"); at both sizes it leaves the strip and the buttons on screen; nothing says
    "not connected"; no broken images; the page's console stays clean."""
    cfg = capture_config(tmp_path / "library")
    cfg.camera.settings = {"shutterspeed": "1/55"}
    with RunningDaemon(cfg) as running:
        viewport(browser, size)
        browser.get(running.url)
        wait = WebDriverWait(browser, 60, poll_frequency=0.2)
        wait.until(lambda d: spread(d, "live") > 1, "a live image")
        wait.until(banners, "the banner")
        (said,) = banners(browser)
        assert said.startswith("Setting refused: camera setting 'shutterspeed' cannot be '1/55'"), said
        assert "it offers 1/100, 1/80, 1/60, 1/50 or 1/40 nearest (`medianscan camera show` lists all 37)" in said
        assert "1/4000" not in said and "Ctrl-C" not in said and f"`kill -HUP {os.getpid()}`" in said, said
        camera = browser.find_element(By.CSS_SELECTOR, "[data-testid=camera]")
        assert camera.text.endswith("settings refused") and "warn" in str(camera.get_attribute("class"))
        assert "not connected" not in browser.find_element(By.TAG_NAME, "body").text
        assert browser.execute_script(BROKEN) == []
        wanted = ["#live", "[data-testid=capture]", "[data-testid=frames]", ".bar"]
        assert browser.execute_script(ON_SCREEN, wanted) == dict.fromkeys(wanted, "shown")
        assert browser.execute_script("return document.documentElement.scrollHeight <= innerHeight")
        browser.find_element(By.CSS_SELECTOR, "[data-testid=capture]").click()
        wait.until(lambda d: "cannot capture" in text_of(d, "answer"), "the refusal")
        assert browser.find_element(By.CSS_SELECTOR, "[data-testid=answer]").get_attribute("class") == "refused"
        assert len(banners(browser)) == 1  # said once
        assert list(running.daemon.library.root.glob("*/frame-001")) == []  # nothing shot
        assert console_errors(browser) == []
        shot = tmp_path / f"refused-{size[0]}.png"
        browser.save_screenshot(str(shot))
        if os.environ.get("MEDIANSCAN_SHOTS"):
            shutil.copy(shot, Path(os.environ["MEDIANSCAN_SHOTS"]) / shot.name)


def test_the_console_runs_a_roll_on_the_rig_shows_progress_and_the_found_frame_and_stops_it(
    tmp_path: Path, browser: WebDriver
) -> None:
    from medianscan.config.schema import StripConfig

    cfg = capture_config(tmp_path / "library")
    cfg.camera.simulated.strip = StripConfig(frames=8, slip=0.05, blank=[4], seed=3, start_mm=1.2)
    cfg.rig.port = "simulated"
    cfg.camera.simulated.seconds_per_frame = 0.4  # a burst takes a body's time: the run lasts long enough to watch
    with RunningDaemon(cfg) as running:
        viewport(browser, SIZES[0])
        browser.get(running.url)
        wait = WebDriverWait(browser, 90, poll_frequency=0.1)

        def shown(testid: str) -> bool:
            return bool(browser.find_element(By.CSS_SELECTOR, f"[data-testid={testid}]").is_displayed())

        wait.until(lambda d: spread(d, "live") > 1, "a live image")
        assert shown("scan-roll") and not shown("stop-roll") and not shown("roll-run")  # a rig is configured

        browser.find_element(By.CSS_SELECTOR, "[data-testid=scan-roll]").click()
        wait.until(lambda d: shown("roll-run") and " shot, " in text_of(d, "roll-run"), "progress")
        assert shown("stop-roll") and not shown("scan-roll")
        wait.until(lambda d: shown("frame-outline"), "the found frame's outline on the live view")
        outline = browser.find_element(By.CSS_SELECTOR, "[data-testid=frame-outline]").rect
        picture = browser.find_element(By.CSS_SELECTOR, "[data-testid=live]").rect
        assert picture["x"] <= outline["x"] and outline["x"] + outline["width"] <= picture["x"] + picture["width"]
        assert outline["width"] > 0.5 * picture["width"]  # a frame fills most of the view's width
        on_screen = browser.execute_script(ON_SCREEN, ["#stop-roll", "#roll-run", "#capture", "#live-box"])
        assert set(on_screen.values()) == {"shown"}, on_screen
        try:
            wait.until(lambda d: re.match(r"roll run: [1-9] shot", text_of(d, "roll-run")))
        except TimeoutException:
            pytest.fail(f"a frame shot: the run says {text_of(browser, 'roll-run')!r}, the answer "
                        f"{text_of(browser, 'answer')!r}")  # fmt: skip
        wait.until(lambda d: "strip frame 1: found, centred" in text_of(d, "roll-frames"), "the run's frame lines")
        assert re.search(r"strip frame 1: found, centred.*, shot as frame-001, ", text_of(browser, "roll-frames"))
        on_screen = browser.execute_script(ON_SCREEN, ["#roll-frames li", "#capture", "[data-testid=frames]"])
        assert set(on_screen.values()) == {"shown"}, on_screen
        browser.save_screenshot(str(tmp_path / "roll-run.png"))
        if os.environ.get("MEDIANSCAN_ROLL_SCREENSHOT"):
            shutil.copy(tmp_path / "roll-run.png", os.environ["MEDIANSCAN_ROLL_SCREENSHOT"])
        if os.environ.get("MEDIANSCAN_SHOTS"):
            shutil.copy(tmp_path / "roll-run.png", Path(os.environ["MEDIANSCAN_SHOTS"]) / "roll-run.png")

        browser.find_element(By.CSS_SELECTOR, "[data-testid=stop-roll]").click()
        wait.until(lambda d: "stopped: by the operator" in text_of(d, "answer"), "the run's summary")
        wait.until(lambda d: not shown("roll-run") and not shown("stop-roll") and shown("scan-roll"), "run over")
        assert console_errors(browser) == []
        assert not shown("frame-outline")
        said = text_of(browser, "answer")
        assert re.match(r"roll run: \d+ frames? shot \(frame-001", said) and " of 7 " not in said, said
        blended = "[data-testid=frames] > li[data-state=blended]"
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, blended)) >= 1, "the run's stacks blended")

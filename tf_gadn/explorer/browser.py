"""Headless Chromium driving the explorer page (Selenium, the `dev` extra; Debian's `chromium` and
`chromium-driver`): shared by the browser test and `benchmarks/explorer_latency.py`."""

from __future__ import annotations

import shutil
import time

import numpy as np

CHROMIUM_BINARIES = ("chromium", "chromium-browser", "google-chrome")
INSTALL_HINT = (
    "install Debian's browser: apt-get install -y chromium chromium-driver (.ci/run does)"
)


def chromium(width: int = 1400, height: int = 900):
    """A headless Chromium with the browser console log readable (`console_errors`); the system chromedriver,
    so Selenium Manager never downloads anything."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = next((shutil.which(b) for b in CHROMIUM_BINARIES if shutil.which(b)), None)
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        raise RuntimeError(f"no Chromium or chromedriver on PATH: {INSTALL_HINT}")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
        "--disable-extensions",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver_path), options=options)


def renders(driver) -> int:
    return driver.execute_script("return window.explorer ? window.explorer.renders : 0")


def wait_for(driver, predicate, timeout: float = 60.0, what: str = "the page"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    errors = driver.execute_script("return window.explorer ? window.explorer.errors : []")
    raise TimeoutError(f"waited {timeout:.0f} s for {what}; page errors: {errors}")


def wait_for_render(driver, after: int, timeout: float = 60.0) -> int:
    """Waits until more than `after` pictures were shown (and no request is still coalescing)."""
    return wait_for(
        driver,
        lambda: (
            renders(driver) > after
            and driver.execute_script("return document.getElementById('busy').textContent === ''")
            and renders(driver)
        ),
        timeout,
        "a new picture",
    )


def picture(driver) -> str:
    return driver.find_element("id", "picture").get_attribute("src")


def console_errors(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def slider_latencies(driver, slider_id: str = "dim-0", moves: int = 40) -> np.ndarray:
    """Moves a slider one step at a time with the keyboard (alternating directions so it never sticks at an end),
    each after the previous picture was shown; returns the page's own input-to-picture-decoded times in ms."""
    from selenium.webdriver.common.keys import Keys

    slider = driver.find_element("id", slider_id)
    # a picture still being drawn for an earlier change would add its time after `start` (seen under load)
    wait_for(
        driver,
        lambda: driver.execute_script("return document.getElementById('busy').textContent === ''"),
        what="the page to be idle",
    )
    start = len(driver.execute_script("return window.explorer.latencies"))
    for move in range(moves):
        before = renders(driver)
        slider.send_keys(Keys.ARROW_RIGHT if (move // 5) % 2 == 0 else Keys.ARROW_LEFT)
        wait_for_render(driver, before)
    return np.array(driver.execute_script("return window.explorer.latencies")[start:], np.float64)

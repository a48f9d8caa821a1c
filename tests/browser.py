"""Headless chromium driven by selenium, for the tests that open pages in a real browser.

CI installs Debian's `chromium` and `chromium-driver` (.ci/run); without them these tests
fail with a message saying so (they are never skipped).
"""

from __future__ import annotations

import contextlib
import shutil

import pytest

CHROMIUM = ("/usr/bin/chromium", "chromium")
CHROMEDRIVER = ("/usr/bin/chromedriver", "chromedriver")


def _which(candidates) -> str | None:
    for name in candidates:
        found = shutil.which(name)
        if found:
            return found
    return None


@contextlib.contextmanager
def chromium(width: int = 1400, height: int = 1000):
    """A headless chromium WebDriver, always quit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = _which(CHROMIUM), _which(CHROMEDRIVER)
    if not binary or not driver_path:
        pytest.fail("chromium and chromedriver are needed for the browser tests: "
                    "apt-get install chromium chromium-driver (.ci/run does)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()

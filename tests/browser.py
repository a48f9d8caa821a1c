"""Headless chromium driven by selenium, for the tests that open pages in a real browser.

CI installs Debian's `chromium` and `chromium-driver` (.ci/run); without them these tests
fail with a message saying so (they are never skipped).
"""

from __future__ import annotations

import contextlib
import shutil
import time

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


# Imports the module at arguments[0] into the page and answers its `handles[name]` once
# `handles.ready` resolves: called with the arguments (and awaited) when a function.
_HANDLE_SCRIPT = """
const [url, name, args, timeoutMs] = arguments;
const done = arguments[arguments.length - 1];
const late = new Promise((_, reject) => setTimeout(() => reject(new Error(
  `${url}: handles.ready did not resolve within ${timeoutMs} ms (is this the URL the page imported?`
  + ' Another URL is another module instance, one nothing renders)')), timeoutMs));
const answer = import(url).then(async (module) => {
  await module.handles.ready;
  const handle = module.handles[name];
  return typeof handle === 'function' ? await handle(...args) : handle;
});
Promise.race([answer, late]).then((value) => done({value: value === undefined ? null : value}),
  (error) => done({error: String((error && error.stack) || error)}));
"""


def module_handle(driver, module_url: str, name: str, *args, timeout: float = 30.0):
    """`handles[name]` exported by the ES module at `module_url`, as the page (or the frame
    switched to) imported it; a function is called with `args` and its result awaited.

    The module is imported with `import(module_url)` inside the page: the same absolute URL
    as the page's own import gives the very module instance the page runs, so the handles are
    the page's own, and no global of the page's is needed. Waits for `handles.ready` first
    (at most `timeout` seconds)."""
    driver.set_script_timeout(timeout + 10)
    result = driver.execute_async_script(_HANDLE_SCRIPT, module_url, name, list(args), int(timeout * 1000))
    if "error" in result:
        raise AssertionError(f"handles.{name} of {module_url}: {result['error']}")
    return result["value"]


def wait_for(driver, script: str, timeout: float = 20.0, *args):
    """The first truthy value `script` returns in the page, polled every 50 ms; fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script, *args)
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {script} {args}")

"""A real browser for the tests: headless Debian Chromium driven by Selenium.

``chromium()`` starts a fresh browser (its own temporary profile, no background network chatter)
and quits it afterwards. When Chromium, its driver or Selenium is missing the test is skipped with
the reason, or failed under CI=true, like the other unavailable services in tests/conftest.py.
``screenshot()`` saves a full-page PNG under tests/artifacts/ (gitignored). The helpers below it
are what every browser test does: find (``by``, ``wait_for``), type (``fill``), press and wait for
the next page (``press``, ``click_and_wait``), read (``text_of``, ``focused_id``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT, wait_until

CHROMIUM = Path(os.environ.get("DEARMP_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("DEARMP_TEST_CHROMEDRIVER", "/usr/bin/chromedriver"))
ARTIFACTS = ROOT / "tests" / "artifacts"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
WIDTH, HEIGHT = 1280, 900


def _unavailable(why: str) -> None:
    message = f"headless Chromium unavailable: {why}"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@contextmanager
def chromium(*, javascript: bool = True) -> Iterator[Any]:
    """A headless Chromium WebDriver; ``javascript=False`` turns page scripts off."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:
        _unavailable(f"selenium is not installed ({exc})")
        raise
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (path.is_file() and os.access(path, os.X_OK)):
            _unavailable(f"{path} is missing or not executable")
    profile = tempfile.mkdtemp(prefix="dearmp-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
        f"--window-size={WIDTH},{HEIGHT}",
        "--lang=en-GB",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(arg)
    if not javascript:
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2}
        )
    try:
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    except Exception as exc:
        shutil.rmtree(profile, ignore_errors=True)
        _unavailable(f"could not start {CHROMIUM} via {CHROMEDRIVER}: {type(exc).__name__}: {exc}")
        raise
    try:
        driver.set_page_load_timeout(30)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(driver: Any, name: str, *, width: int = WIDTH) -> Path:
    """Save the whole page (not only the viewport) as tests/artifacts/NAME.png, at ``width``."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    metrics = {"width": width, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": width < 600}
    # Lay the page out at the chosen width first, then grow the viewport to the content height.
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    layout = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    height = int(layout.get("cssContentSize", layout.get("contentSize", {})).get("height", HEIGHT))
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {**metrics, "height": max(height, 200)}
    )
    try:
        assert driver.save_screenshot(str(path)), f"could not save {path}"
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    return path


def page_replaced(element: Any) -> bool:
    """True once ``element`` (e.g. the old page's <html>) no longer belongs to the page: the
    browser has moved on. Chromium reports this as StaleElementReferenceException or, now and
    then, as "Node with given id does not belong to the document": both mean the same here."""
    from selenium.common.exceptions import WebDriverException

    try:
        element.tag_name  # noqa: B018  (touching a detached element raises)
        return False
    except WebDriverException:
        return True


def by() -> Any:
    """Selenium's ``By`` (imported when used: without Selenium, ``chromium()`` skips the test)."""
    from selenium.webdriver.common.by import By

    return By


def wait_for(driver: Any, css: str, timeout: float = 15) -> Any:
    """The first element matching ``css``, once it is in the page."""
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(
        ec.presence_of_element_located((by().CSS_SELECTOR, css))
    )


def click_and_wait(driver: Any, element: Any, timeout: float = 20) -> None:
    """Click ``element`` (a button or a link) and wait for the next page to load."""
    old = driver.find_element(by().TAG_NAME, "html")
    element.click()
    wait_until(lambda: page_replaced(old), timeout, 0.05, "the next page to load")
    wait_for(driver, "body", timeout)


def press(driver: Any, css: str, timeout: float = 20) -> None:
    """Press the button (or follow the link) matching ``css`` and wait for the next page."""
    click_and_wait(driver, driver.find_element(by().CSS_SELECTOR, css), timeout)


def fill(driver: Any, values: Mapping[str, str]) -> None:
    """Type each value into the field with that id, replacing what was there."""
    for field_id, value in values.items():
        field = driver.find_element(by().ID, field_id)
        field.clear()
        field.send_keys(value)


def text_of(driver: Any, css: str) -> str:
    return str(driver.find_element(by().CSS_SELECTOR, css).text)


def focused_id(driver: Any) -> str:
    """The id of ``document.activeElement``. Asked through DevTools, so it works with the page's
    scripts turned off too."""
    answer = driver.execute_cdp_cmd(
        "Runtime.evaluate",
        {
            "expression": "document.activeElement && document.activeElement.id",
            "returnByValue": True,
        },
    )
    return str(answer["result"].get("value") or "")


# WCAG 2.0, 2.1 and 2.2, levels A and AA: the rules the pages must pass.
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]


def axe_violations(driver: Any) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.2 A/AA violations on the current page (injected through WebDriver,
    which the pages' CSP does not govern), each as {id, impact, help, targets}."""
    try:
        from selenium_axe_python import Axe
    except ImportError as exc:
        _unavailable(f"selenium-axe-python is not installed ({exc})")
        raise
    axe = Axe(driver)
    axe.inject()
    results = axe.run(options={"runOnly": {"type": "tag", "values": WCAG_TAGS}})
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "targets": [node["target"] for node in v["nodes"]][:5],
        }
        for v in results["violations"]
    ]


def set_width(driver: Any, width: int) -> None:
    """Lay pages out as a screen ``width`` CSS pixels wide (a phone below 600)."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": width < 600},
    )


def overflows(driver: Any) -> bool:
    """True if the page is wider than the screen (it would scroll sideways)."""
    return bool(
        driver.execute_script("return document.documentElement.scrollWidth > window.innerWidth + 1")
    )

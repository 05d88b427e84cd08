"""The page in a real headless Chromium against a real `recsys serve`: pick a user, see
their recommendations, like one and watch the list change, open similar items.

Screenshots of the page before and after the like are saved (RECSYS_SCREENSHOTS, default
var/screenshots) for people to look at.
"""

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import load_into, require
from training.bench.server import run_server

pytestmark = [pytest.mark.e2e, pytest.mark.movielens, pytest.mark.model]

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
WAIT = 30  # seconds: a first TensorFlow call on a busy CI machine can be slow
SCREENSHOTS = Path(os.environ.get("RECSYS_SCREENSHOTS", "var/screenshots"))


@pytest.fixture(scope="module")
def server(databases, movielens, artifacts_dir: Path, tmp_path_factory) -> Iterator[str]:
    """A server on a database of its own (the page writes a like into it)."""
    url = databases.migrated("sqlite")
    load_into(url, movielens)
    log = tmp_path_factory.mktemp("page") / "server.log"
    env = {"RECSYS_DATABASE_URL": url, "RECSYS_ARTIFACTS_DIR": str(artifacts_dir)}
    with run_server(env, log, timeout=120) as running:
        yield running.base


@pytest.fixture(scope="module")
def browser() -> Iterator:
    require(
        Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists(),
        "Chromium is not installed (apt-get install chromium chromium-driver)",
    )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="recsys-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # This machine's network is closed: no background or first-run traffic to wait on.
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                 f"--user-data-dir={profile}"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def listed(driver, panel: str) -> list[str]:  # type: ignore[no-untyped-def]
    """The item ids a panel shows now, read in one script call (the page re-renders
    lists whole, so element handles held across calls can go stale)."""
    script = f"return [...document.querySelectorAll('#{panel} > li')].map(li => li.dataset.id)"
    return driver.execute_script(script)


def test_like_changes_the_list_and_similar_items_open(server: str, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, WAIT)
    browser.get(f"{server}/ui/")
    field = wait.until(ready.element_to_be_clickable((By.ID, "user-id")))
    field.send_keys("1")
    browser.find_element(By.ID, "show").click()
    wait.until(lambda d: len(listed(d, "recommendations")) == 10)
    wait.until(lambda d: len(listed(d, "history")) == 20)  # the first page of 272
    assert "Toy Story" not in browser.find_element(By.ID, "recommendations").text  # seen
    before = listed(browser, "recommendations")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / "page-before-like.png"))

    liked = before[0]
    browser.find_element(By.CSS_SELECTOR, f'#recommendations > li[data-id="{liked}"] .like').click()
    wait.until(lambda d: listed(d, "recommendations") and liked not in listed(d, "recommendations"))
    wait.until(lambda d: listed(d, "history")[:1] == [liked])  # newest first
    after = listed(browser, "recommendations")
    assert len(after) == 10 and after != before
    browser.save_screenshot(str(SCREENSHOTS / "page-after-like.png"))

    browser.find_element(By.CSS_SELECTOR, "#recommendations > li .similar").click()
    wait.until(lambda d: len(listed(d, "similar")) == 10)
    assert browser.find_element(By.ID, "banner").get_attribute("hidden") is not None  # no error
    for name in ("page-before-like.png", "page-after-like.png"):
        assert (SCREENSHOTS / name).read_bytes().startswith(b"\x89PNG")


def test_errors_are_shown_not_swallowed(server: str, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{server}/ui/?user=somebody-new")
    wait = WebDriverWait(browser, WAIT)
    wait.until(lambda d: "popular items" in d.find_element(By.ID, "recs-state").text)
    assert "a like creates them" in browser.find_element(By.ID, "attributes").text

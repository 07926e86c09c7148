"""A real headless Chromium against `wallet local`: the lobby lists the games, a click opens the game page, the
(stand-in) provider loader starts with the options of guide step 2, and a bad session shows an error page.

Needs Debian's /usr/bin/chromium and /usr/bin/chromedriver, and selenium (dev extra). Missing ones fail the test: a
browser test that silently skips proves nothing. Selenium Manager is never used (explicit driver path), so nothing is
downloaded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from wallet_local.dynamodb_local import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
WALLET = Path(sys.executable).parent / "wallet"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
BANNER_LAST = "Ctrl-C stops it"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
WAIT = 10.0
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The developer's shell must not point the stack elsewhere or change the demo's customer id, salt or currency.
_FOREIGN_PREFIXES = ("WALLET_", "AWS_ENDPOINT_URL")
_FOREIGN = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "PYTEST_CURRENT_TEST")

EXPECTED_LOBBY = {
    "slot": ["Emerald City", "Ocean Pearl"],
    "egame": ["Turbo Keno"],
    "betting": ["Live Bets"],
}


@dataclass
class Stack:
    base_url: str
    lobby_url: str
    session: str
    output: list[str]


def _environment() -> dict[str, str]:
    env = {
        key: value for key, value in os.environ.items() if key not in _FOREIGN and not key.startswith(_FOREIGN_PREFIXES)
    }
    env.update(POWERTOOLS_LOG_LEVEL="WARNING", POWERTOOLS_METRICS_DISABLED="true", PYTHONUNBUFFERED="1")
    return env


@pytest.fixture(scope="module")
def local_stack() -> Iterator[Stack]:
    """Our own `wallet local` on free ports (not the shared session stack of tests/e2e/conftest.py)."""
    port, dynamodb_port = free_port(), free_port()
    while dynamodb_port == port:
        dynamodb_port = free_port()
    process = subprocess.Popen(
        [str(WALLET), "local", "--port", str(port), "--dynamodb-port", str(dynamodb_port)],
        env=_environment(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a Ctrl-C on pytest does not reach it; cleanup can reach it and its java child
    )
    assert process.stdout is not None
    lines: list[str] = []
    banner_done = threading.Event()

    def pump() -> None:  # drain its output for its whole life, so a full pipe never blocks it
        assert process.stdout is not None
        for line in iter(process.stdout.readline, ""):
            lines.append(line.rstrip("\n"))
            if line.startswith(BANNER_LAST):
                banner_done.set()

    reader = threading.Thread(target=pump, name="wallet-local-browser-output", daemon=True)
    reader.start()
    stopped = False
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not banner_done.wait(0.1):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"`wallet local` printed no banner within {START_TIMEOUT}s (exit code {process.poll()}):\n"
                    + "\n".join(lines)
                )
        lobby_at = next(i for i, line in enumerate(lines) if line.startswith("Lobby ("))
        lobby_url = lines[lobby_at + 1].strip()
        assert lobby_url.startswith(f"http://127.0.0.1:{port}/lobby?session="), lines
        session = parse_qs(urlsplit(lobby_url).query)["session"][0]
        yield Stack(f"http://127.0.0.1:{port}", lobby_url, session, lines)

        process.send_signal(signal.SIGINT)
        code = process.wait(STOP_TIMEOUT)
        stopped = True
        assert code == 0, "\n".join(lines)
    finally:
        if not stopped and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)  # only the group we started: `wallet local` and its DynamoDB Local
            process.wait(10)
        reader.join(5)
        process.stdout.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    assert CHROMIUM.is_file(), f"{CHROMIUM} is missing: apt-get install chromium chromium-driver"
    assert CHROMEDRIVER.is_file(), f"{CHROMEDRIVER} is missing: apt-get install chromium-driver"
    with tempfile.TemporaryDirectory(prefix="wallet-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for argument in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,800",
            f"--user-data-dir={profile}",
        ):
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
        driver.set_page_load_timeout(WAIT)
        try:
            yield driver
        finally:
            driver.quit()


def _screenshot(driver: webdriver.Chrome, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    path.unlink(missing_ok=True)
    assert driver.save_screenshot(str(path))
    content = path.read_bytes()
    assert len(content) > len(PNG_SIGNATURE) and content.startswith(PNG_SIGNATURE), path
    return path


def _console_errors(driver: webdriver.Chrome) -> list[str]:
    """SEVERE console entries (CSP violations, failed scripts), except the favicon the front does not serve."""
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if entry.get("level") == "SEVERE" and "favicon.ico" not in entry["message"]
    ]


def test_lobby_to_game(local_stack: Stack, browser: webdriver.Chrome) -> None:
    wait = WebDriverWait(browser, WAIT)

    browser.get(local_stack.lobby_url)
    assert browser.title == "Lobby"
    listed = {
        game_type: [
            item.text for item in browser.find_elements(By.CSS_SELECTOR, f"section.type-{game_type} li.game span")
        ]
        for game_type in EXPECTED_LOBBY
    }
    assert listed == EXPECTED_LOBBY
    assert len(browser.find_elements(By.CSS_SELECTOR, "li.game")) == 4
    # The thumbnails come from the asset path and actually load (served, and allowed by the page's CSP).
    wait.until(
        lambda driver: driver.execute_script(
            "return Array.from(document.images).every(function (i) { return i.complete && i.naturalWidth > 0; })"
        )
    )
    thumbnails = sorted(
        urlsplit(image.get_attribute("src") or "").path for image in browser.find_elements(By.CSS_SELECTOR, "li img")
    )
    assert thumbnails == [f"/media/thumb/{game}.svg" for game in ("a_ec", "a_op", "b_1009", "e_keno")]
    assert _console_errors(browser) == []
    _screenshot(browser, "browser-lobby.png")

    browser.find_element(By.XPATH, "//li[@data-game='a_op']//a[.//span[text()='Ocean Pearl']]").click()
    wait.until(lambda driver: urlsplit(driver.current_url).path == "/play/a_op")
    wait.until(lambda driver: driver.execute_script("return !!(window.standInLoader && window.standInLoader.started)"))

    assert browser.title == "Ocean Pearl"
    loader = browser.execute_script("return window.standInLoader")
    assert loader["options"] == {
        "path": "/media/",
        "game": "a_op",
        "billing": "local",
        "token": local_stack.session,
        "kf": "1",
        "kf_list": [1, 5, 10, 50, 100, 500],
        "currency": "FUN",
        "language": "en_US",
        "home_page": "/",
    }
    assert loader["flashData"] is True
    games = browser.find_elements(By.CSS_SELECTOR, "#game-content > .stand-in-game[data-game='a_op']")
    assert len(games) == 1
    assert "Stand-in game a_op" in games[0].text
    assert _console_errors(browser) == []
    _screenshot(browser, "browser-game.png")


def test_bogus_session_shows_the_session_error(local_stack: Stack, browser: webdriver.Chrome) -> None:
    browser.get(f"{local_stack.base_url}/play/a_op?session=demo.bogus-session")
    assert browser.title == "Cannot open the game"
    assert "Your game session has expired" in browser.find_element(By.CSS_SELECTOR, "p.error").text
    assert browser.find_elements(By.ID, "game-content") == []
    assert browser.execute_script("return typeof window.standInLoader") == "undefined"
    assert browser.execute_script("return typeof window.gameLoaderOptions") == "undefined"

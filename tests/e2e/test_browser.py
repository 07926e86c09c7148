"""A real headless Chromium against `wallet local`: the lobby lists the games, a click opens the game page, the
(stand-in) provider loader starts with the options of guide step 2, and a bad session shows an error page.

Needs Debian's /usr/bin/chromium and /usr/bin/chromedriver, and selenium (dev extra). Missing ones fail the test: a
browser test that silently skips proves nothing. Selenium Manager is never used (explicit driver path), so nothing is
downloaded.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.unit.test_ledger_sql import Player, build_book
from wallet.operator.cli import main as operator_main
from wallet_local.process import LocalStackProcess, StackFailed

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
WAIT = 10.0
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

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


@pytest.fixture(scope="module")
def local_stack() -> Iterator[Stack]:
    """Our own `wallet local` on free ports (not the shared session stack of tests/e2e/conftest.py)."""
    process = LocalStackProcess(
        {"POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"}, start_timeout=START_TIMEOUT
    )
    try:
        process.start()
    except StackFailed as exc:
        raise AssertionError(str(exc)) from None
    try:
        lines = process.banner.splitlines()
        lobby_at = next(i for i, line in enumerate(lines) if line.startswith("Lobby ("))
        lobby_url = lines[lobby_at + 1].strip()
        assert lobby_url.startswith(f"{process.base_url}/lobby?session="), lines
        session = parse_qs(urlsplit(lobby_url).query)["session"][0]
        yield Stack(process.base_url, lobby_url, session, lines)
        code, output = process.stop(STOP_TIMEOUT)
        assert code == 0, output
    finally:
        process.kill()


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


# --- `wallet report --html`: the page is a file, opened with file:// (no stack, no server, no network) ---------------

HOSTILE_GAME = "<script>alert(1)</script>"
HOSTILE_PLAYER = "<img src=x onerror=alert(1)>"
REPORT_WAIT = 60.0


def test_html_report_renders_offline(
    browser: webdriver.Chrome, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The known archive (FUN: slot_a and slot_b over two days; EUR: slot_a on the second) plus a hostile EUR player
    # whose game id and player id are markup, with a round left open on a third day.
    book = build_book()
    mallory = Player(HOSTILE_PLAYER, currency="EUR")
    mallory.opening("2026-12-03T07:00:00.000000Z", "10")
    mallory.move("2026-12-03T08:00:00.000000Z", minus="1.25", game=(HOSTILE_GAME, "r9"))
    book.players[mallory.player_id] = mallory
    book.accounts.append(mallory.account(mallory.rows[-1]["created_at"]))
    book.write(tmp_path / "archive")
    for name in ("WALLET_ARCHIVE_DIR", "WALLET_ATHENA_WORKGROUP", "WALLET_ATHENA_DATABASE", "WALLET_TABLE"):
        monkeypatch.delenv(name, raising=False)
    page = tmp_path / "report.html"
    capsys.readouterr()
    argv = ["report", "--archive", str(tmp_path / "archive"), "--open-minutes", "0", "--html", str(page)]
    assert operator_main(argv) == 0
    capsys.readouterr()

    _console_errors(browser)  # the browser is shared: reading the log empties it of the earlier tests' pages
    # 4.8 MB of inlined plotly.js to parse: on a busy machine that alone can take longer than WAIT.
    browser.set_page_load_timeout(REPORT_WAIT)
    try:
        browser.get(page.as_uri())
    finally:
        browser.set_page_load_timeout(WAIT)
    assert browser.title.startswith("Wallet report ")
    WebDriverWait(browser, REPORT_WAIT).until(
        lambda driver: len(driver.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .main-svg")) >= 4
    )
    plots = browser.find_elements(By.CSS_SELECTOR, ".js-plotly-plot")
    assert sorted(plot.get_attribute("id") or "" for plot in plots) == [
        "games-0",
        "games-1",
        "ggr-daily-0",
        "ggr-daily-1",
    ]
    for part in ("summary", "charts", "open-rounds", "games"):
        assert browser.find_element(By.ID, part).is_displayed(), part
    assert all(plot.is_displayed() for plot in plots)

    traces = "return document.getElementById(arguments[0]).data.map(function (t) { return [t.name, t.y.length]; })"
    # Currencies in order: EUR (0), FUN (1). Each day from the currency's first to its last is a point.
    assert browser.execute_script(traces, "ggr-daily-0") == [  # sorted by game id: "<" before "s"
        ["&lt;script&gt;alert(1)&lt;/script&gt;", 2],  # entity-escaped for plotly.js, shown as written (below)
        ["slot_a", 2],
        ["all games", 2],
    ]
    assert browser.execute_script(traces, "ggr-daily-1") == [["slot_a", 2], ["slot_b", 2], ["all games", 2]]
    assert browser.execute_script(traces, "games-1") == [["bets", 2], ["wins", 2], ["GGR", 2]]
    # Drawn: one SVG path per line, and the hostile id shows as text in the legend, never as markup.
    assert len(browser.find_elements(By.CSS_SELECTOR, "#ggr-daily-1 .scatterlayer .trace")) == 3
    legend = [item.text for item in browser.find_elements(By.CSS_SELECTOR, "#ggr-daily-0 .legendtext")]
    assert HOSTILE_GAME in legend, legend
    open_rounds = browser.find_element(By.ID, "open-rounds").text
    assert HOSTILE_PLAYER in open_rounds and HOSTILE_GAME in open_rounds and "1.25" in open_rounds
    assert browser.find_element(By.ID, "summary").text.splitlines()[1:] == [
        "EUR: bets 3.25, wins 0, GGR 3.25",  # 1.5 + 0.5 + 1.25, exact
        "FUN: bets 22, wins 31, GGR -9",
    ]
    assert browser.execute_script("return document.images.length") == 0  # the player id's <img> is text
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0  # nothing fetched
    assert _console_errors(browser) == []  # no CSP violation, no failed script
    # The page's CSP is live: a request from the page is refused before it leaves (example.invalid never resolves).
    refused = browser.execute_async_script(
        "var done = arguments[arguments.length - 1];"
        "document.addEventListener('securitypolicyviolation', function (e) { done(e.violatedDirective); });"
        "new Image().src = 'https://example.invalid/pixel.png';"
    )
    assert refused == "img-src"

    # The hover text is the exact amount string (the bar is drawn from a float).
    browser.execute_script("Plotly.Fx.hover('games-0', [{curveNumber: 0, pointNumber: 0}])")
    WebDriverWait(browser, WAIT).until(
        lambda driver: driver.find_elements(By.CSS_SELECTOR, "#games-0 .hoverlayer text")
    )
    hover = browser.find_element(By.CSS_SELECTOR, "#games-0 .hoverlayer").text
    assert HOSTILE_GAME in hover and "bets 1.25" in hover, hover

    # The whole page in one picture: the window as tall as the page (plus the browser's own frame).
    height, frame = browser.execute_script(
        "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight]"
    )
    browser.set_window_size(1280, max(800, int(height) + int(frame)))
    try:
        _screenshot(browser, "browser-report.png")
    finally:
        browser.set_window_size(1280, 800)

"""wallet.operator.html_report: the report dict as one offline page, with exact figures, per-currency charts and
every data string escaped (for HTML in the tables, for plotly.js's pseudo-HTML in the charts)."""

from __future__ import annotations

import json
import re
import sys
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from wallet.money.operator_moves import OperatorError
from wallet.operator import html_report
from wallet.operator.html_report import chart_text, games_figure, ggr_figure, render_html, summary, write_html_report

HOSTILE_GAME = "<script>alert(1)</script>"
HOSTILE_PLAYER = '"><img src=x onerror=alert(1)>&amp;'
ESCAPED_GAME = "&lt;script&gt;alert(1)&lt;/script&gt;"  # as plotly.js must receive it to show it as written


def ggr_row(day: str, game_id: str, currency: str, bets: str, wins: str, ggr: str) -> dict[str, Any]:
    return {"day": day, "game_id": game_id, "currency": currency, "bets": bets, "wins": wins, "ggr": ggr}


def game_row(game_id: str, currency: str, bets: str, wins: str, ggr: str, players: int, rounds: int) -> dict[str, Any]:
    return {
        "game_id": game_id,
        "currency": currency,
        "bets": bets,
        "wins": wins,
        "ggr": ggr,
        "players": players,
        "rounds": rounds,
    }


def open_round(
    game_uuid: str, player_id: str, game_id: str, bet: str, at: str, minutes: int, currency: str = "EUR"
) -> dict[str, Any]:
    return {
        "game_uuid": game_uuid,
        "player_id": player_id,
        "game_id": game_id,
        "currency": currency,
        "bet": bet,
        "last_bet_at": at,
        "player": player_id,
        "open_minutes": minutes,
    }


# Two currencies; FUN has no play on 2026-12-02 (a 0 on its lines), amounts a float would round.
REPORT: dict[str, Any] = {
    "generated_at": "2026-12-03T10:00:00.000000Z",
    "open_minutes": 60,
    "ggr": [
        ggr_row("2026-12-01", "slot_a", "FUN", "10", "2.5", "7.5"),
        ggr_row("2026-12-02", HOSTILE_GAME, "EUR", "1", "0", "1"),
        ggr_row("2026-12-02", "slot_a", "EUR", "100", "250.12345678", "-150.12345678"),
        ggr_row("2026-12-03", "slot_a", "FUN", "0.1", "0", "0.1"),
        ggr_row("2026-12-03", "slot_b", "FUN", "0.2", "0", "0.2"),
    ],
    "games": [
        game_row(HOSTILE_GAME, "EUR", "1", "0", "1", 1, 1),
        game_row("slot_a", "EUR", "100", "250.12345678", "-150.12345678", 1, 2),
        game_row("slot_a", "FUN", "10.1", "2.5", "7.6", 2, 3),
        game_row("slot_b", "FUN", "0.2", "0", "0.2", 1, 1),
    ],
    "open_rounds": [
        open_round("r9", HOSTILE_PLAYER, HOSTILE_GAME, "1", "2026-12-03T08:00:00.000000Z", 120),
        open_round("r2", "alice", "", "0.1", "2026-12-03T08:30:00.000000Z", 90, "FUN"),
    ],
}

EMPTY: dict[str, Any] = {
    "generated_at": "2026-12-03T10:00:00.000000Z",
    "open_minutes": 60,
    "ggr": [],
    "games": [],
    "open_rounds": [],
}


# --- reading the page back --------------------------------------------------------------------------------------------


class Page(HTMLParser):
    """The parts of a page the tests look at: every tag's attributes, the scripts, each section's text and its table
    rows (cell texts, entities decoded: what a reader sees)."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self.text: dict[str, str] = {}
        self.rows: dict[str, list[list[str]]] = {}
        self._sections: list[str | None] = []
        self._script: list[str] | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.feed(text)
        self.close()

    @property
    def _section(self) -> str | None:
        return next((name for name in self._sections if name), None)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "section":
            self._sections.append(dict(attrs).get("id"))
        elif tag == "script":
            self._script = []
        elif tag == "tr" and self._section:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self._sections.pop()
        elif tag == "script" and self._script is not None:
            self.scripts.append("".join(self._script))
            self._script = None
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._section:
            self.rows.setdefault(self._section, []).append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._script.append(data)
            return
        if self._cell is not None:
            self._cell.append(data)
        if self._section:
            self.text[self._section] = self.text.get(self._section, "") + data

    def section_text(self, name: str) -> str:
        return " ".join(self.text.get(name, "").split())


def figures(page: str) -> dict[str, tuple[list[dict[str, Any]], dict[str, Any]]]:
    """The (data, layout) of every Plotly.newPlot("id", data, layout, config) in the page, by div id."""
    decoder = json.JSONDecoder()
    found = {}
    for call in re.finditer(r'Plotly\.newPlot\(\s*"([^"]+)",\s*', page):
        data, end = decoder.raw_decode(page, call.end())
        layout, _ = decoder.raw_decode(page, re.compile(r",\s*").match(page, end).end())  # type: ignore[union-attr]
        found[call.group(1)] = (data, layout)
    return found


@pytest.fixture(scope="module")
def page() -> str:
    return render_html(REPORT)


@pytest.fixture(scope="module")
def parsed(page: str) -> Page:
    return Page(page)


# --- the figures ------------------------------------------------------------------------------------------------------


def test_summary_sums_exactly_within_each_currency() -> None:
    assert summary(REPORT) == [
        {"currency": "EUR", "bets": "101", "wins": "250.12345678", "ggr": "-149.12345678"},
        {"currency": "FUN", "bets": "10.3", "wins": "2.5", "ggr": "7.8"},  # 10.1 + 0.2: 10.299999999999999 in floats
    ]
    assert summary(EMPTY) == []


def test_page_shows_the_exact_figures(parsed: Page) -> None:
    assert "EUR: bets 101, wins 250.12345678, GGR -149.12345678" in parsed.section_text("summary")
    assert "FUN: bets 10.3, wins 2.5, GGR 7.8" in parsed.section_text("summary")
    assert parsed.rows["games"] == [
        ["Game", "Currency", "Bets", "Wins", "GGR", "Players", "Rounds"],
        [HOSTILE_GAME, "EUR", "1", "0", "1", "1", "1"],
        ["slot_a", "EUR", "100", "250.12345678", "-150.12345678", "1", "2"],
        ["slot_a", "FUN", "10.1", "2.5", "7.6", "2", "3"],
        ["slot_b", "FUN", "0.2", "0", "0.2", "1", "1"],
    ]
    assert parsed.rows["open-rounds"] == [
        ["Round", "Player", "Game", "Bet", "Last bet at", "Open for (minutes)"],
        ["r9", HOSTILE_PLAYER, HOSTILE_GAME, "1 EUR", "2026-12-03T08:00:00.000000Z", "120"],
        ["r2", "alice", "—", "0.1 FUN", "2026-12-03T08:30:00.000000Z", "90"],  # no game id: a dash
    ]


def test_the_page_has_its_parts_in_order(page: str) -> None:
    places = [page.index(f'<section id="{part}">') for part in ("summary", "charts", "open-rounds", "games")]
    assert places == sorted(places)
    assert page.index("<h1>Wallet report</h1>") < places[0]
    assert '<time id="generated-at">2026-12-03T10:00:00.000000Z</time>' in page
    assert "a bet with nothing after it for 60 minutes or more" in page


def test_ggr_per_day_a_line_per_game_in_each_currency(page: str) -> None:
    charts = figures(page)
    assert set(charts) == {"ggr-daily-0", "games-0", "ggr-daily-1", "games-1"}  # EUR, FUN: sorted

    fun, layout = charts["ggr-daily-1"]
    assert [trace["name"] for trace in fun] == ["slot_a", "slot_b", "all games"]
    assert all(trace["type"] == "scatter" and trace["x"] == ["2026-12-01", "2026-12-02", "2026-12-03"] for trace in fun)
    assert [trace["y"] for trace in fun] == [
        [7.5, 0.0, 0.1],
        [0.0, 0.0, 0.2],
        [7.5, 0.0, 0.3],
    ]  # total: Decimal, then drawn
    # The hover's numbers are the exact strings (day, bets, wins, GGR); the total is a Decimal sum: 0.3, not 0.3000…4.
    assert [trace["customdata"] for trace in fun] == [
        [["2026-12-01", "10", "2.5", "7.5"], ["2026-12-02", "0", "0", "0"], ["2026-12-03", "0.1", "0", "0.1"]],
        [["2026-12-01", "0", "0", "0"], ["2026-12-02", "0", "0", "0"], ["2026-12-03", "0.2", "0", "0.2"]],
        [["2026-12-01", "10", "2.5", "7.5"], ["2026-12-02", "0", "0", "0"], ["2026-12-03", "0.3", "0", "0.3"]],
    ]
    assert all("%{customdata[3]}" in trace["hovertemplate"] and "%{y" not in trace["hovertemplate"] for trace in fun)
    assert layout["title"]["text"] == "GGR per day (FUN)"
    assert layout["xaxis"]["type"] == "date"

    eur, layout = charts["ggr-daily-0"]
    assert [(trace["name"], trace["x"], trace["y"]) for trace in eur] == [
        (ESCAPED_GAME, ["2026-12-02"], [1.0]),
        ("slot_a", ["2026-12-02"], [-150.12345678]),
        ("all games", ["2026-12-02"], [-149.12345678]),
    ]
    assert eur[1]["customdata"] == [["2026-12-02", "100", "250.12345678", "-150.12345678"]]
    assert layout["title"]["text"] == "GGR per day (EUR)"


def test_per_game_bars_of_bets_wins_and_ggr(page: str) -> None:
    fun, layout = figures(page)["games-1"]
    assert [(trace["type"], trace["name"], trace["x"], trace["y"]) for trace in fun] == [
        ("bar", "bets", ["slot_a", "slot_b"], [10.1, 0.2]),
        ("bar", "wins", ["slot_a", "slot_b"], [2.5, 0.0]),
        ("bar", "GGR", ["slot_a", "slot_b"], [7.6, 0.2]),
    ]
    assert [trace["customdata"] for trace in fun] == [
        [["slot_a", "10.1"], ["slot_b", "0.2"]],
        [["slot_a", "2.5"], ["slot_b", "0"]],
        [["slot_a", "7.6"], ["slot_b", "0.2"]],
    ]
    assert layout["barmode"] == "group"
    assert layout["xaxis"]["type"] == "category"  # a game id like "2026" must stay a category, not a number
    eur, _ = figures(page)["games-0"]
    assert [trace["x"] for trace in eur] == [[ESCAPED_GAME, "slot_a"]] * 3
    assert eur[2]["customdata"] == [[ESCAPED_GAME, "1"], ["slot_a", "-150.12345678"]]


def test_currencies_are_never_added_together(page: str, parsed: Page) -> None:
    """Each currency has its own summary line and its own charts, and no chart holds another currency's amounts."""
    lines = re.findall(r"(EUR|FUN): bets ([^,]+),", parsed.section_text("summary"))
    assert lines == [("EUR", "101"), ("FUN", "10.3")]
    for total in ("111.3", "252.62345678", "-141.32345678"):  # EUR + FUN bets, wins, GGR: nowhere
        assert total not in page
    own = {
        "EUR": {"0", "1", "100", "250.12345678", "-150.12345678", "101", "-149.12345678"},  # rows, day totals
        "FUN": {"0", "10", "2.5", "7.5", "0.1", "0.2", "0.3", "10.1", "7.6"},
    }
    for chart, (data, layout) in figures(page).items():
        currency = "EUR" if chart.endswith("-0") else "FUN"
        assert currency in layout["title"]["text"]
        shown = {
            amount for trace in data for point in trace["customdata"] for amount in point[1:] if "-12-" not in amount
        }
        assert shown <= own[currency], (chart, shown - own[currency])
    # slot_a is played in both currencies: each bar chart has its own currency's bets for it, never their sum.
    assert figures(page)["games-0"][0][0]["customdata"][1] == ["slot_a", "100"]
    assert figures(page)["games-1"][0][0]["customdata"][0] == ["slot_a", "10.1"]


def test_the_figure_functions() -> None:
    """The figures directly (plotly objects), e.g. a currency with one game has no total line."""
    single = {**EMPTY, "ggr": [ggr_row("2026-12-05", "g", "XBT", "0.00000001", "0", "0.00000001")]}
    figure = ggr_figure(single, "XBT").to_plotly_json()
    assert [(t["name"], list(t["x"]), list(t["y"])) for t in figure["data"]] == [("g", ["2026-12-05"], [1e-08])]
    assert [list(point) for point in figure["data"][0]["customdata"]] == [
        ["2026-12-05", "0.00000001", "0", "0.00000001"]
    ]
    assert ggr_figure(EMPTY, "FUN").to_plotly_json()["data"] == []
    bars = games_figure({**EMPTY, "games": [game_row("2026", "FUN", "3", "1", "2", 1, 1)]}, "FUN").to_plotly_json()
    assert [(t["name"], list(t["x"])) for t in bars["data"]] == [
        ("bets", ["2026"]),
        ("wins", ["2026"]),
        ("GGR", ["2026"]),
    ]
    assert bars["layout"]["xaxis"]["type"] == "category"


def test_chart_text_escapes_plotly_pseudo_html() -> None:
    assert chart_text(HOSTILE_GAME) == ESCAPED_GAME
    assert chart_text("a&b <br> &lt;") == "a&amp;b &lt;br&gt; &amp;lt;"
    assert chart_text("slot_a") == "slot_a"


# --- offline and safe -------------------------------------------------------------------------------------------------


def test_no_external_urls_and_nothing_fetched(page: str, parsed: Page) -> None:
    """No src or href on any element, no <link>, every script inline, and no URL at all outside plotly.js's own code
    (its bundle names sites in strings it never fetches for these charts). The CSP refuses any fetch anyway."""
    assert [tag for tag, attrs in parsed.tags if "src" in attrs or "href" in attrs] == []
    assert [tag for tag, _ in parsed.tags if tag in ("link", "iframe", "img", "object", "embed")] == []
    plotly_js = max(parsed.scripts, key=len)
    assert len(plotly_js) > 1_000_000  # plotly.js itself, inlined
    rest = page.replace(plotly_js, "")
    assert "http://" not in rest and "https://" not in rest
    assert "cdn.plot.ly" not in rest
    [policy] = [attrs["content"] for tag, attrs in parsed.tags if attrs.get("http-equiv") == "Content-Security-Policy"]
    assert policy is not None
    assert "default-src 'none'" in policy and "connect-src 'none'" in policy
    assert "http" not in policy


def test_hostile_ids_are_escaped(page: str, parsed: Page) -> None:
    assert HOSTILE_GAME not in page
    assert "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the tables, HTML-escaped
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;&amp;amp;" in page
    # One <script> per chart plus plotly.js and its config: the data opened none and closed none.
    assert len([tag for tag, _ in parsed.tags if tag == "script"]) == 2 + 4
    assert page.count("</script>") == 2 + 4
    # In the figures' JSON the ids are entity-escaped for plotly.js, and JSON-escaped inside the <script>.
    assert "\\u003c" in page
    assert figures(page)["ggr-daily-0"][0][0]["name"] == ESCAPED_GAME
    # The hostile ids show as written: the reader's text is the raw id.
    assert parsed.rows["open-rounds"][1][1:3] == [HOSTILE_PLAYER, HOSTILE_GAME]


def test_empty_report() -> None:
    page = render_html(EMPTY)
    parsed = Page(page)
    assert figures(page) == {}
    assert "Plotly" not in page and len(page) < 20_000  # no chart, no plotly.js
    assert parsed.section_text("summary") == "Totals per currency No game play in the archive."
    assert parsed.section_text("charts") == "Charts No charts: no game play in the archive."
    assert parsed.section_text("open-rounds") == "Open rounds no open rounds"
    assert parsed.section_text("games") == "Games no games"
    assert parsed.rows == {}


def test_write_html_report(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    write_html_report(target, REPORT)
    text = target.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "—" in text
    assert len(figures(text)) == 4
    with pytest.raises(OperatorError, match="cannot write"):
        write_html_report(tmp_path / "no" / "such" / "dir.html", REPORT)


def test_without_plotly_it_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "plotly.io", None)  # as if the `analytics` extra were not installed
    with pytest.raises(OperatorError, match=r"needs plotly and jinja2 .*wallet\[analytics\]"):
        render_html(REPORT)


def test_amounts_in_the_page_are_the_report_strings() -> None:
    """A trailing-zero or long decimal string is shown as given, never re-formatted through a float."""
    report = {
        **EMPTY,
        "games": [
            game_row("g", "FUN", "12345678901234567890.12345678", "0.00000001", "12345678901234567890.12345677", 1, 1)
        ],
    }
    parsed = Page(render_html(report))
    assert parsed.rows["games"][1][2:5] == [
        "12345678901234567890.12345678",
        "0.00000001",
        "12345678901234567890.12345677",
    ]
    assert summary(report)[0]["ggr"] == "12345678901234567890.12345677"
    assert Decimal(summary(report)[0]["bets"]) - Decimal(summary(report)[0]["wins"]) == Decimal(
        "12345678901234567890.12345677"
    )
    assert html_report.AMOUNTS == ("bets", "wins", "ggr")

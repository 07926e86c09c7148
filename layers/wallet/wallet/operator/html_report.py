"""`wallet report --html FILE`: the report dict (wallet.operator.ledger_sql.report) as one self-contained page.

The page: a title, generated_at, a summary line per currency, then per currency a GGR-per-day line chart (one line per
game, plus their total when there are several) and a per-game bar chart (bets, wins, GGR), then the open rounds and
the games as tables. Amounts of different currencies are never added together: each currency has its own charts.

Offline by construction: plotly.js is inlined once in <head>, nothing has a src or href to anywhere, and the page's
Content-Security-Policy refuses any fetch (connect-src, img-src, font-src: nothing from the network).

Exactness: the report's amounts are exact decimal strings. The tables and the charts' hover text show those strings;
only the y-values the charts draw with are floats. Totals are summed as Decimal.

Escaping: the page shell is a Jinja2 template with autoescape. Chart text (trace names, categories, hover text) goes
through plotly.js's pseudo-HTML (it reads <b>, <br>, <a href=...>, and decodes &lt; and the like), so every data string
bound for a chart is entity-escaped with chart_text() and shows literally; the figure JSON plotly embeds escapes <, >
and / itself, so nothing in the data can close the <script> it sits in.

plotly and jinja2 (the `analytics` extra) are imported inside the functions: the Lambda layer ships neither.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from wallet.money.amounts import format_number
from wallet.money.operator_moves import OperatorError

AMOUNTS = ("bets", "wins", "ggr")
CHART_HEIGHT = 380
# Drawing only: the inlined plotly.js and the charts' scripts need 'unsafe-inline' (the SVG charts need no eval);
# images only as data:/blob: (the modebar's "download as PNG"); everything that could reach the network is 'none'.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data: blob:; connect-src 'none'; font-src 'none'; form-action 'none'; base-uri 'none'"
)
CHART_CONFIG = {"displaylogo": False, "responsive": True, "showSendToCloud": False}
TOTAL_LINE = "all games"
# customdata per point: day, bets, wins, GGR (exact strings)
GGR_HOVER = "%{customdata[0]}<br>GGR %{customdata[3]}<br>bets %{customdata[1]}, wins %{customdata[2]}"

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{{ csp }}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Wallet report {{ report.generated_at }}</title>
<style>
  body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5rem 2rem; color: #1f2933; }
  h1 { margin: 0 0 .25rem; font-size: 1.6rem; }
  h2 { margin: 2rem 0 .5rem; font-size: 1.25rem; border-bottom: 1px solid #d9e2ec; padding-bottom: .25rem; }
  h3 { margin: 1.25rem 0 .25rem; font-size: 1.05rem; }
  .meta, .empty { color: #627d98; }
  ul.summary { list-style: none; padding: 0; margin: .5rem 0; }
  ul.summary li { margin: .15rem 0; }
  /* auto-fill, not auto-fit: each chart is drawn (and sized) as its <script> runs, before the next cell exists */
  .charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(480px, 1fr)); gap: 1rem; }
  .chart { min-width: 0; border: 1px solid #e4e7eb; border-radius: 4px; }
  table { border-collapse: collapse; margin: .5rem 0; font-variant-numeric: tabular-nums; }
  th, td { padding: .3rem .7rem; border-bottom: 1px solid #e4e7eb; text-align: left; }
  th { background: #f5f7fa; }
  td.amount, th.amount, td.count, th.count { text-align: right; }
  td.loss { color: #c62828; }
  code { font-size: .9em; }
</style>
{% if plotly_js %}<script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>
<script>{{ plotly_js | safe }}</script>{% endif %}
</head>
<body>
<header>
  <h1>Wallet report</h1>
  <p class="meta">Generated at <time id="generated-at">{{ report.generated_at }}</time> from the ledger archive.
  Open rounds: a bet with nothing after it for {{ report.open_minutes }} minutes or more.</p>
</header>

<section id="summary">
  <h2>Totals per currency</h2>
  {% if summary %}<ul class="summary">
  {% for line in summary %}<li data-currency="{{ line.currency }}"><strong>{{ line.currency }}</strong>:
    bets <span class="bets">{{ line.bets }}</span>, wins <span class="wins">{{ line.wins }}</span>,
    GGR <span class="ggr">{{ line.ggr }}</span></li>
  {% endfor %}</ul>
  {% else %}<p class="empty">No game play in the archive.</p>{% endif %}
</section>

<section id="charts">
  <h2>Charts</h2>
  {% for section in charts %}<section class="currency" data-currency="{{ section.currency }}">
    <h3>{{ section.currency }}</h3>
    <div class="charts">
      <div class="chart">{{ section.ggr | safe }}</div>
      <div class="chart">{{ section.games | safe }}</div>
    </div>
  </section>
  {% else %}<p class="empty">No charts: no game play in the archive.</p>{% endfor %}
</section>

<section id="open-rounds">
  <h2>Open rounds</h2>
  {% if report.open_rounds %}<table>
    <thead><tr><th>Round</th><th>Player</th><th>Game</th><th class="amount">Bet</th><th>Last bet at</th>
      <th class="count">Open for (minutes)</th></tr></thead>
    <tbody>
    {% for row in report.open_rounds %}<tr>
      <td><code>{{ row.game_uuid }}</code></td><td>{{ row.player_id }}</td><td>{{ row.game_id or "—" }}</td>
      <td class="amount">{{ row.bet }} {{ row.currency }}</td><td>{{ row.last_bet_at }}</td>
      <td class="count">{{ row.open_minutes }}</td>
    </tr>
    {% endfor %}</tbody>
  </table>
  {% else %}<p class="empty">no open rounds</p>{% endif %}
</section>

<section id="games">
  <h2>Games</h2>
  {% if report.games %}<table>
    <thead><tr><th>Game</th><th>Currency</th><th class="amount">Bets</th><th class="amount">Wins</th>
      <th class="amount">GGR</th><th class="count">Players</th><th class="count">Rounds</th></tr></thead>
    <tbody>
    {% for row in report.games %}<tr>
      <td>{{ row.game_id }}</td><td>{{ row.currency }}</td><td class="amount">{{ row.bets }}</td>
      <td class="amount">{{ row.wins }}</td>
      <td class="amount{% if row.ggr.startswith('-') %} loss{% endif %}">{{ row.ggr }}</td>
      <td class="count">{{ row.players }}</td><td class="count">{{ row.rounds }}</td>
    </tr>
    {% endfor %}</tbody>
  </table>
  {% else %}<p class="empty">no games</p>{% endif %}
</section>
</body>
</html>
"""


def write_html_report(path: Path, report: Mapping[str, Any]) -> None:
    """Write the page for `report` (the dict of ledger_sql.report) to `path`, UTF-8."""
    page = render_html(report)
    try:
        Path(path).write_text(page, encoding="utf-8")
    except OSError as exc:
        raise OperatorError(f"--html: cannot write {path}: {exc.strerror or exc}") from None


def render_html(report: Mapping[str, Any]) -> str:
    """The whole page as text."""
    try:
        import jinja2
        import plotly.io
        import plotly.offline
    except ImportError as exc:
        raise OperatorError(
            f"--html needs plotly and jinja2 ({exc.name} is missing): pip install 'wallet[analytics]'"
        ) from None

    charts = []
    for number, currency in enumerate(currencies(report)):
        charts.append(
            {
                "currency": currency,
                "ggr": _chart_div(plotly.io, ggr_figure(report, currency), f"ggr-daily-{number}"),
                "games": _chart_div(plotly.io, games_figure(report, currency), f"games-{number}"),
            }
        )
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return environment.from_string(PAGE).render(
        report=report,
        summary=summary(report),
        charts=charts,
        csp=CONTENT_SECURITY_POLICY,
        # No chart, no 4.6 MB of plotly.js.
        plotly_js=plotly.offline.get_plotlyjs() if charts else "",
    )


def currencies(report: Mapping[str, Any]) -> list[str]:
    """Every currency the game play was in, sorted: one summary line and one pair of charts each."""
    return sorted({row["currency"] for row in report["ggr"]} | {row["currency"] for row in report["games"]})


def summary(report: Mapping[str, Any]) -> list[dict[str, str]]:
    """Per currency: the total bets, wins and GGR over its games, summed exactly (Decimal) within that currency."""
    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: dict.fromkeys(AMOUNTS, Decimal(0)))
    for row in report["games"]:
        for amount in AMOUNTS:
            totals[row["currency"]][amount] += Decimal(row[amount])
    return [
        {"currency": currency, **{amount: format_number(value) for amount, value in totals[currency].items()}}
        for currency in sorted(totals)
    ]


def chart_text(text: object) -> str:
    """A data string for plotly.js's pseudo-HTML chart text: entity-escaped, so it shows as written, never as markup."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def ggr_figure(report: Mapping[str, Any], currency: str) -> Any:
    """GGR per day in one currency: a line per game (and the games' total when there are several).

    Every day from the currency's first to its last is on the line; a day a game had no play is a 0 (no bets, no
    wins), not a straight line drawn across it."""
    import plotly.graph_objects as go

    rows = [row for row in report["ggr"] if row["currency"] == currency]
    days = _every_day(row["day"] for row in rows)
    by_game: dict[str, dict[str, Mapping[str, Any]]] = defaultdict(dict)
    for row in rows:
        by_game[row["game_id"]][row["day"]] = row
    lines: list[tuple[str, Mapping[str, Mapping[str, Any]], bool]] = [
        (chart_text(game), by_game[game], False) for game in sorted(by_game)
    ]
    if len(lines) > 1:
        lines.append((TOTAL_LINE, _day_totals(rows), True))
    figure = go.Figure()
    for name, per_day, total in lines:
        exact = [[day, *(str(per_day[day][amount]) if day in per_day else "0" for amount in AMOUNTS)] for day in days]
        figure.add_trace(
            go.Scatter(
                x=days,
                y=[float(Decimal(point[3])) for point in exact],  # drawing only: the hover shows the exact string
                customdata=exact,
                name=name,
                mode="lines+markers",
                line={"dash": "dot", "color": "#52606d"} if total else None,
                hovertemplate=GGR_HOVER,
            )
        )
    figure.update_layout(
        title={"text": f"GGR per day ({chart_text(currency)})"},
        xaxis={"type": "date", "tickformat": "%Y-%m-%d", "dtick": 86_400_000, "title": {"text": "day"}},
        yaxis={"title": {"text": f"GGR ({chart_text(currency)})"}, "zeroline": True},
        legend={"title": {"text": "game"}},
        **_layout(),
    )
    return figure


def games_figure(report: Mapping[str, Any], currency: str) -> Any:
    """Bets, wins and GGR per game in one currency, as grouped bars."""
    import plotly.graph_objects as go

    rows = sorted((row for row in report["games"] if row["currency"] == currency), key=lambda row: row["game_id"])
    games = [chart_text(row["game_id"]) for row in rows]
    figure = go.Figure()
    for amount, label, colour in (("bets", "bets", "#1f77b4"), ("wins", "wins", "#ff7f0e"), ("ggr", "GGR", "#2ca02c")):
        figure.add_trace(
            go.Bar(
                x=games,
                y=[float(Decimal(row[amount])) for row in rows],  # drawing only
                customdata=[[game, str(row[amount])] for game, row in zip(games, rows, strict=True)],
                name=label,
                marker={"color": colour},
                hovertemplate=f"%{{customdata[0]}}<br>{label} %{{customdata[1]}}<extra></extra>",
            )
        )
    figure.update_layout(
        title={"text": f"Per game ({chart_text(currency)})"},
        barmode="group",
        # Categories, always: a game id such as "2026" or "1e3" must not turn the axis into numbers or dates.
        xaxis={"type": "category", "title": {"text": "game"}},
        yaxis={"title": {"text": chart_text(currency)}, "zeroline": True},
        **_layout(),
    )
    return figure


def _layout() -> dict[str, Any]:
    return {
        "height": CHART_HEIGHT,
        "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
        "template": "plotly_white",
        "hovermode": "closest",
    }


def _chart_div(plotly_io: Any, figure: Any, div_id: str) -> str:
    """The figure's <div> and the <script> that draws it, with no plotly.js of its own (it is in <head>)."""
    text: str = plotly_io.to_html(
        figure,
        full_html=False,
        include_plotlyjs=False,
        include_mathjax=False,
        div_id=div_id,
        config=CHART_CONFIG,
        default_width="100%",
        default_height=f"{CHART_HEIGHT}px",
    )
    return text


def _every_day(days: Iterable[str]) -> list[str]:
    """Every ISO day from the first to the last of `days`, sorted (none for none)."""
    known = sorted({date.fromisoformat(day) for day in days})
    if not known:
        return []
    return [(known[0] + timedelta(days=n)).isoformat() for n in range((known[-1] - known[0]).days + 1)]


def _day_totals(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """Per day, the games' bets, wins and GGR added up exactly (the rows are all in one currency)."""
    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: dict.fromkeys(AMOUNTS, Decimal(0)))
    for row in rows:
        for amount in AMOUNTS:
            totals[row["day"]][amount] += Decimal(row[amount])
    return {day: {amount: format_number(value) for amount, value in sums.items()} for day, sums in totals.items()}

"""`wallet report --html FILE` end to end in one process: the SQL on DuckDB over test_ledger_sql's known archive, the
JSON on stdout as without --html, and the page written with the same figures."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.unit.test_cli import _reading
from tests.unit.test_html_report import Page, figures
from tests.unit.test_ledger_sql import build_book


@pytest.fixture
def archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The known archive in WALLET_ARCHIVE_DIR, and no table or Athena settings (as test_cli's fixture)."""
    root = tmp_path / "archive"
    build_book().write(root)
    monkeypatch.setenv("WALLET_ARCHIVE_DIR", str(root))
    for name in ("WALLET_ATHENA_WORKGROUP", "WALLET_ATHENA_DATABASE", "WALLET_TABLE"):
        monkeypatch.delenv(name, raising=False)
    return root


def test_report_html_writes_the_page(archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "report.html"
    code, out, err = _reading(capsys, "report", "--open-minutes", "0", "--html", str(target))
    assert (code, err) == (0, None)
    assert [(g["game_id"], g["currency"], g["ggr"]) for g in out["games"]] == [
        ("slot_a", "EUR", "2"),
        ("slot_a", "FUN", "-14"),
        ("slot_b", "FUN", "5"),
    ]

    page = target.read_text(encoding="utf-8")
    parsed = Page(page)
    assert f'<time id="generated-at">{out["generated_at"]}</time>' in page
    assert "EUR: bets 2, wins 0, GGR 2" in parsed.section_text("summary")
    assert "FUN: bets 22, wins 31, GGR -9" in parsed.section_text("summary")
    assert parsed.rows["games"][1:] == [
        [g["game_id"], g["currency"], g["bets"], g["wins"], g["ggr"], str(g["players"]), str(g["rounds"])]
        for g in out["games"]
    ]
    assert [row[:4] for row in parsed.rows["open-rounds"][1:]] == [
        ["r5", "carol", "slot_a", "2 EUR"],
        ["r2", "alice", "slot_b", "5 FUN"],
    ]
    charts = figures(page)
    assert sorted(charts) == ["games-0", "games-1", "ggr-daily-0", "ggr-daily-1"]
    fun = charts["ggr-daily-1"][0]
    assert [(t["name"], t["x"], [p[3] for p in t["customdata"]]) for t in fun] == [
        ("slot_a", ["2026-12-01", "2026-12-02"], ["-17", "3"]),
        ("slot_b", ["2026-12-01", "2026-12-02"], ["0", "5"]),  # no slot_b play on the first day
        ("all games", ["2026-12-01", "2026-12-02"], ["-17", "8"]),
    ]
    assert [t["customdata"] for t in charts["games-0"][0]] == [[["slot_a", "2"]], [["slot_a", "0"]], [["slot_a", "2"]]]
    assert "https://" not in page.replace(max(parsed.scripts, key=len), "")


def test_report_html_into_a_missing_folder_fails_cleanly(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _reading(capsys, "report", "--html", str(tmp_path / "no" / "such" / "report.html"))
    assert (code, out) == (2, None)
    assert err["error"].startswith("--html: cannot write ")


def test_report_html_without_plotly_says_what_to_install(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "plotly.io", None)
    code, out, err = _reading(capsys, "report", "--html", str(tmp_path / "report.html"))
    assert (code, out) == (2, None)
    assert "pip install 'wallet[analytics]'" in err["error"]
    assert not (tmp_path / "report.html").exists()

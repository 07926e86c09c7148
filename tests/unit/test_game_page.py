"""The game page (guide step 2) and the lobby: option validation, escaping of every value that can reach the page, and
the handler functions/game_page/app.py on moto (DynamoDB for the session, S3 for the published games_config)."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from pydantic import ValidationError

from tests.support import SALT, SESSION_KEY, LambdaContext, lambda_function
from wallet.bootstrap import lambda_wallet
from wallet.catalogue.games import GAMES_CONFIG_KEY, GamesConfig, parse_games_config
from wallet.catalogue.page import (
    DEFAULT_KF_LIST,
    LANGUAGES,
    GamePageOptions,
    PageRequestError,
    js_value,
    parse_page_options,
    render_error,
    render_game_page,
    render_lobby,
)
from wallet.settings import CatalogueSettings

BUCKET = "wallet-test-site"
CUSTOMER = "casino_42"
HOSTILE = "</title><script>alert(1)</script><!--"


def config_document(**names: str) -> dict[str, Any]:
    def app(app_id: str, name: str, game_type: str) -> dict[str, Any]:
        return {
            "html5": {"app": [f"{app_id}-1"], "mainjs": "game.js"},
            "loader": app_id,
            "name": {"en": name},
            "position": "1",
            "source": app_id,
            "preview": f"thumb/{app_id}.png",
            "type": game_type,
        }

    return {
        "api": "http://flash-api.example.test:8080/",
        "applications": {
            "a_op": app("a_op", names.get("a_op", "Ocean Pearl"), "slot"),
            "a_ec": app("a_ec", names.get("a_ec", "Emerald City"), "slot"),
            "e_keno": app("e_keno", names.get("e_keno", "Turbo Keno"), "egame"),
            "b_1009": app("b_1009", names.get("b_1009", "Live Bets"), "betting"),
        },
        "container": "http://s3bucket.example.test/",
        "container_name": "flashslots",
    }


def config(**names: str) -> GamesConfig:
    return parse_games_config(json.dumps(config_document(**names)).encode())


# --- a small HTML reader -------------------------------------------------------------------------------------------


class Page(HTMLParser):
    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.title = ""
        self.text: list[str] = []
        self._in: str | None = None
        self._script_attrs: dict[str, str | None] = {}
        self._script_data: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in ("script", "title"):
            self._in = tag
            self._script_attrs = dict(attrs)
            self._script_data = []

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._in == "script":
            self.scripts.append((self._script_attrs, "".join(self._script_data)))
        if tag == "title" and self._in == "title":
            self.title = "".join(self._script_data)
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in:
            self._script_data.append(data)
        else:
            self.text.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]

    def meta(self) -> set[tuple[str, str | None]]:
        return {(a.get("name") or a.get("http-equiv") or "", a.get("content")) for a in self.find("meta")}


OPTIONS_SCRIPT = re.compile(r"<script nonce=\"([^\"]+)\">window\.gameLoaderOptions = (.*?);</script>", re.S)


def loader_options(page: str) -> dict[str, Any]:
    found = OPTIONS_SCRIPT.search(page)
    assert found, page
    literal = found.group(2)
    assert "</" not in literal and "<" not in literal and ">" not in literal, literal
    assert "\u2028" not in literal and "\u2029" not in literal
    return dict(json.loads(literal))


def assert_three_scripts_only(page: str, path: str = "/media") -> None:
    assert page.lower().count("<script") == 3, page
    assert page.lower().count("</script") == 3, page
    parsed = Page(page)
    assert [attrs.get("src") for attrs, _ in parsed.scripts] == [
        None,
        f"{path}/prod_flash_data.js",
        f"{path}/loader/build/app.js",
    ]


# --- parse_page_options ---------------------------------------------------------------------------------------------


def test_defaults() -> None:
    options = parse_page_options("a_op", {"session": "p1.token"})
    assert options.application == "a_op"
    assert options.kf == 1
    assert options.kf_list == [1, 5, 10, 50, 100, 500] == list(DEFAULT_KF_LIST)
    assert options.currency is None
    assert options.language == "en_US"
    assert options.home_page == "/"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1,10,100,500", [1, 10, 100, 500]),
        ("[1,10,100,500]", [1, 10, 100, 500]),
        (" 1 , 2 ,3 ", [1, 2, 3]),
        ("7", [7]),
        (",".join(str(n) for n in range(1, 13)), list(range(1, 13))),
    ],
)
def test_kf_list_accepted(value: str, expected: list[int]) -> None:
    assert parse_page_options("a_op", {"session": "s", "kf_list": value}).kf_list == expected


@pytest.mark.parametrize(
    "value",
    [
        ",".join(str(n) for n in range(1, 14)),  # 13 values: more than the guide's 12
        "1,0,5",
        "-1",
        "1,abc",
        "1.5",
        "1,2000000",
        "",
        "[]",
        "1;2",
    ],
)
def test_kf_list_refused(value: str) -> None:
    with pytest.raises(PageRequestError, match="kf_list"):
        parse_page_options("a_op", {"session": "s", "kf_list": value})


def test_kf_list_is_capped_at_twelve_in_the_model_too() -> None:
    assert len(GamePageOptions(application="a_op", session="s", kf_list=list(range(1, 13))).kf_list) == 12
    with pytest.raises(ValidationError):
        GamePageOptions(application="a_op", session="s", kf_list=list(range(1, 14)))


@pytest.mark.parametrize("value", ["100", "1", "1000000"])
def test_kf_accepted(value: str) -> None:
    assert parse_page_options("a_op", {"session": "s", "kf": value}).kf == int(value)


@pytest.mark.parametrize("value", ["0", "-5", "abc", "1e3x", "1000001", ""])
def test_kf_refused(value: str) -> None:
    with pytest.raises(PageRequestError, match="kf"):
        parse_page_options("a_op", {"session": "s", "kf": value})


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_six_languages(language: str) -> None:
    assert parse_page_options("a_op", {"session": "s", "language": language}).language == language


def test_exactly_the_guides_languages() -> None:
    assert set(LANGUAGES) == {"en_US", "ru_RU", "es_ES", "pt_PT", "pt_BR", "fr_FR"}


@pytest.mark.parametrize("language", ["en", "EN_US", "de_DE", "en_US ", "en_US<script>", ""])
def test_other_languages_refused(language: str) -> None:
    with pytest.raises(PageRequestError, match="language"):
        parse_page_options("a_op", {"session": "s", "language": language})


@pytest.mark.parametrize("currency", ["FUN", "EUR", "usd", "BTC2", "A" * 16])
def test_currency_accepted(currency: str) -> None:
    assert parse_page_options("a_op", {"session": "s", "currency": currency}).currency == currency


@pytest.mark.parametrize("currency", ["", "E UR", "EUR<", '"x"', "€", "A" * 17, "EUR;"])
def test_currency_refused(currency: str) -> None:
    with pytest.raises(PageRequestError, match="currency"):
        parse_page_options("a_op", {"session": "s", "currency": currency})


@pytest.mark.parametrize(
    "home_page",
    [
        "/",
        "/lobby",
        "/lobby?from=game&x=1",
        "/a/b#top",
        "https://casino.example/home",
        "http://casino.example:8080/?a=1&b=2",
    ],
)
def test_home_page_accepted(home_page: str) -> None:
    assert parse_page_options("a_op", {"session": "s", "home_page": home_page}).home_page == home_page


@pytest.mark.parametrize(
    "home_page",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        " javascript:alert(1)",
        "//evil.com",
        "//evil.com/path",
        '"><script>alert(1)</script>',
        '/"><script>alert(1)</script>',
        "/'onmouseover='alert(1)",
        "/\\evil.com",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox",
        "ftp://evil.com/",
        "https://",
        "evil.com",
        "/a b",
        "/a\nb",
        "/a\u2028b",
        "",
        "/" + "a" * 512,
    ],
)
def test_home_page_refused(home_page: str) -> None:
    with pytest.raises(PageRequestError, match="home_page"):
        parse_page_options("a_op", {"session": "s", "home_page": home_page})


@pytest.mark.parametrize("application", ["a_op<script>", "../x", "a op", "a/b", "", "x" * 65, "a_op\n", '"'])
def test_application_id_refused(application: str) -> None:
    with pytest.raises(PageRequestError, match="application"):
        parse_page_options(application, {"session": "s"})


@pytest.mark.parametrize("session", ["", "x" * 257])
def test_session_length(session: str) -> None:
    with pytest.raises(PageRequestError, match="session"):
        parse_page_options("a_op", {"session": session})


def test_missing_session_refused() -> None:
    with pytest.raises(PageRequestError, match="session"):
        parse_page_options("a_op", {})


def test_the_application_cannot_be_overridden_from_the_query() -> None:
    assert parse_page_options("a_op", {"session": "s", "application": "b_1009"}).application == "a_op"


def test_unknown_parameters_refused_without_echoing_values() -> None:
    with pytest.raises(PageRequestError) as refused:
        parse_page_options("a_op", {"session": "s", "kf": "<script>alert(1)</script>"})
    assert "<script" not in str(refused.value)
    with pytest.raises(PageRequestError, match="debug"):
        parse_page_options("a_op", {"session": "s", "debug": "1"})


# --- rendering and escaping ---------------------------------------------------------------------------------------


def render(options: GamePageOptions, games: GamesConfig | None = None, **kwargs: Any) -> str:
    arguments: dict[str, Any] = {
        "currency": "FUN",
        "path_to_storage": "/media",
        "customer_id": CUSTOMER,
        "nonce": "n0nce-abc_123",
    }
    arguments.update(kwargs)
    return render_game_page(options, games or config(), **arguments)


def test_page_shape() -> None:
    options = parse_page_options(
        "a_op",
        {"session": "p1.tok", "kf": "100", "kf_list": "1,10,100", "language": "ru_RU", "home_page": "/lobby"},
    )
    page = render(options)
    parsed = Page(page)
    assert page.startswith("<!DOCTYPE html>")
    assert parsed.title == "Ocean Pearl"
    assert {
        ("X-UA-Compatible", "IE=edge,chrome=1"),
        (
            "viewport",
            "width=device-width, initial-scale=1.0, maximum-scale=1.0, minimum-scale=1.0, user-scalable=no, minimal-ui",
        ),
        ("apple-mobile-web-app-capable", "yes"),
        ("mobile-web-app-capable", "yes"),
        ("apple-mobile-web-app-status-bar-style", "black"),
        ("Content-Type", "text/html; charset=utf-8"),
    } <= parsed.meta()
    assert len(parsed.find("div", id="game-content")) == 1
    assert_three_scripts_only(page)
    inline = parsed.scripts[0][0]
    assert inline.get("nonce") == "n0nce-abc_123"
    assert loader_options(page) == {
        "path": "/media/",
        "game": "a_op",
        "billing": CUSTOMER,
        "token": "p1.tok",
        "kf": "100",
        "kf_list": [1, 10, 100],
        "currency": "FUN",
        "language": "ru_RU",
        "home_page": "/lobby",
    }
    # The options are set before the loader runs.
    assert page.index("window.gameLoaderOptions") < page.index("loader/build/app.js")
    assert page.index("prod_flash_data.js") < page.index("loader/build/app.js")


def test_path_to_storage_trailing_slash() -> None:
    page = render(parse_page_options("a_op", {"session": "s"}), path_to_storage="/assets/")
    assert_three_scripts_only(page, "/assets")
    assert loader_options(page)["path"] == "/assets/"


def test_hostile_display_name_is_escaped_in_the_title() -> None:
    games = config(a_op=HOSTILE)
    page = render(parse_page_options("a_op", {"session": "s"}), games)
    assert_three_scripts_only(page)
    assert "<!--" not in page
    assert Page(page).title == HOSTILE  # round-trips as text
    assert "&lt;/title&gt;&lt;script&gt;" in page


@pytest.mark.parametrize(
    "session",
    [
        "</script><script>alert(1)</script>",
        '"};alert(1);//',
        "<!--<script>",
        "\u2028\u2029alert(1)",
        "&lt;&amp;",
        "'\\\"",
        "ü漢字🎰",
    ],
)
def test_hostile_session_round_trips_without_closing_the_script(session: str) -> None:
    options = parse_page_options("a_op", {"session": session, "home_page": "/x?a=1&b=2"})
    page = render(options)
    assert_three_scripts_only(page)
    values = loader_options(page)
    assert values["token"] == session
    assert values["home_page"] == "/x?a=1&b=2"


def test_render_escapes_even_values_settings_would_refuse() -> None:
    # Defence in depth: customer id, currency and nonce are checked upstream, but rendering does not rely on it.
    page = render(
        parse_page_options("a_op", {"session": "s"}),
        customer_id=HOSTILE,
        currency='EUR"</script>',
        nonce='x" onload="alert(1)',
    )
    assert "<!--" not in page
    assert page.lower().count("<script") == 3
    values = loader_options(page)
    assert values["billing"] == HOSTILE
    assert values["currency"] == 'EUR"</script>'
    assert 'nonce="x&quot; onload=&quot;alert(1)"' in page


@pytest.mark.parametrize(
    "environ",
    [
        {"WALLET_CUSTOMER_ID": HOSTILE},
        {"WALLET_CUSTOMER_ID": "a b"},
        {"WALLET_PATH_TO_STORAGE": '/media"><script>'},
        {"WALLET_PATH_TO_STORAGE": "/media\n"},
        {"WALLET_CUSTOMER_ID": "local\n"},
        {"WALLET_PATH_TO_STORAGE": "https://evil.com"},
    ],
)
def test_settings_refuse_hostile_page_values(environ: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        CatalogueSettings.from_env({"WALLET_CATALOGUE_BUCKET": BUCKET, **environ})


def test_js_value_escapes() -> None:
    text = js_value({"a": "</script><!--&\u2028"})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"a": "</script><!--&\u2028"}


def test_unknown_game_is_refused_by_render() -> None:
    with pytest.raises(PageRequestError, match="unknown game"):
        render(parse_page_options("zz_none", {"session": "s"}))


def test_error_page_escapes_its_message() -> None:
    page = render_error(HOSTILE)
    assert "<script" not in page.lower()
    assert "&lt;script&gt;" in page


def test_lobby_escapes_names_and_previews() -> None:
    document = config_document(a_op=HOSTILE, b_1009='<img src=x onerror="alert(1)">')
    document["applications"]["e_keno"]["preview"] = '"><script>alert(2)</script>.png'
    page = render_lobby(parse_games_config(json.dumps(document).encode()), 'p1."<tok>', "/media", "nonce1")
    assert "<script" not in page.lower()
    assert "<img src=x" not in page
    assert "<!--" not in page
    parsed = Page(page)
    names = {a.get("data-game") for a in parsed.find("li")}
    assert names == {"a_op", "a_ec", "e_keno", "b_1009"}
    assert '/media/"><script>alert(2)</script>.png' in [a.get("src") for a in parsed.find("img")]
    assert HOSTILE in "".join(parsed.text)
    hrefs = [a.get("href") or "" for a in parsed.find("a")]
    assert all(parse_qs(urlsplit(href).query)["session"] == ['p1."<tok>'] for href in hrefs), hrefs


# --- the handler on moto ------------------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    body: str
    headers: dict[str, str]

    @property
    def page(self) -> Page:
        return Page(self.body)


class GamePageApp:
    def __init__(self, module: Any, s3: Any) -> None:
        self.module = module
        self.s3 = s3
        self.bodies: list[str] = []

    @property
    def wallet(self) -> Any:
        return lambda_wallet()

    def publish(self, raw: bytes) -> None:
        self.s3.put_object(Bucket=BUCKET, Key=GAMES_CONFIG_KEY, Body=raw, ContentType="application/json")

    def get(self, path: str, query: dict[str, str] | None = None, resource: str = "/play/{application}") -> Reply:
        event = {
            "resource": resource,
            "path": path,
            "httpMethod": "GET",
            "headers": {"Accept": "text/html"},
            "multiValueHeaders": {"Accept": ["text/html"]},
            "queryStringParameters": query or None,
            "multiValueQueryStringParameters": {key: [value] for key, value in (query or {}).items()} or None,
            "pathParameters": None,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": resource,
                "httpMethod": "GET",
                "path": f"/test{path}",
                "stage": "test",
                "requestId": str(uuid.uuid4()),
                "accountId": "123456789012",
                "apiId": "test",
                "identity": {"sourceIp": "203.0.113.10"},
            },
            "body": None,
            "isBase64Encoded": False,
        }
        response = self.module.lambda_handler(event, LambdaContext())
        headers = dict(response.get("headers") or {})
        for key, values in (response.get("multiValueHeaders") or {}).items():
            headers[key] = ", ".join(values)
        body = response.get("body") or ""
        self.bodies.append(body)
        return Reply(response["statusCode"], body, headers)

    def play(self, application: str = "a_op", **query: str) -> Reply:
        return self.get(f"/play/{application}", query)

    def lobby(self, **query: str) -> Reply:
        return self.get("/lobby", query, resource="/lobby")


@pytest.fixture
def app(
    moto_client: Any, boto_session: boto3.session.Session, monkeypatch: pytest.MonkeyPatch
) -> Iterator[GamePageApp]:
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", boto_session)
    monkeypatch.setenv("WALLET_TABLE", "wallet-test")
    monkeypatch.setenv("WALLET_SALT", SALT)
    monkeypatch.setenv("WALLET_SESSION_KEY", SESSION_KEY)
    monkeypatch.setenv("WALLET_CATALOGUE_BUCKET", BUCKET)
    monkeypatch.setenv("WALLET_CUSTOMER_ID", CUSTOMER)
    monkeypatch.setenv("WALLET_PATH_TO_STORAGE", "/media")
    monkeypatch.setenv("WALLET_CATALOGUE_CACHE_SECONDS", "0")  # every request reads S3: publishing shows at once
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    for name in ("WALLET_DISTRIBUTION_ID", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_CLOUDFRONT"):
        monkeypatch.delenv(name, raising=False)
    s3 = boto_session.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    with lambda_function("game_page") as (module, _):
        page_app = GamePageApp(module, s3)
        yield page_app
    for body in page_app.bodies:
        assert SALT not in body, "the salt leaked into a page"
        assert SESSION_KEY not in body, "the session key leaked into a page"


@pytest.fixture
def live(app: GamePageApp) -> tuple[GamePageApp, str]:
    """A published catalogue and player p1 (account currency EUR) with a live session."""
    app.publish(json.dumps(config_document()).encode())
    lambda_wallet().create_player("p1", "EUR", Decimal(1000))
    return app, lambda_wallet().new_session("p1").token


def csp_nonce(headers: dict[str, str]) -> str:
    found = re.findall(r"'nonce-([^']+)'", headers["Content-Security-Policy"])
    assert found and len(set(found)) == 1, headers
    return found[0]


def assert_refused(reply: Reply, status: int, message: str) -> None:
    assert reply.status == status, reply
    assert reply.headers["Content-Type"].startswith("text/html")
    assert reply.headers["Cache-Control"] == "no-store"
    assert reply.headers["Referrer-Policy"] == "no-referrer"
    assert "nonce-" not in reply.headers["Content-Security-Policy"]
    assert "<script" not in reply.body.lower()
    assert "gameLoaderOptions" not in reply.body
    assert 'id="game-content"' not in reply.body
    assert message in " ".join(reply.page.text), reply.body


def test_game_page_for_a_live_session(live: tuple[GamePageApp, str]) -> None:
    app, token = live
    reply = app.play("a_op", session=token, kf="100", language="pt_BR", home_page="https://casino.example/")

    assert reply.status == 200, reply.body
    assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
    assert reply.headers["Cache-Control"] == "no-store"
    assert reply.headers["Referrer-Policy"] == "no-referrer"
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    csp = reply.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "object-src 'none'" in csp and "'unsafe-inline'" not in csp
    nonce = csp_nonce(reply.headers)
    page = reply.page
    assert page.scripts[0][0].get("nonce") == nonce
    assert page.find("style")[0].get("nonce") == nonce
    assert_three_scripts_only(reply.body)
    assert len(page.find("div", id="game-content")) == 1
    assert ("apple-mobile-web-app-capable", "yes") in page.meta()
    assert ("X-UA-Compatible", "IE=edge,chrome=1") in page.meta()
    assert page.title == "Ocean Pearl"
    assert loader_options(reply.body) == {
        "path": "/media/",
        "game": "a_op",
        "billing": CUSTOMER,
        "token": token,
        "kf": "100",
        "kf_list": [1, 5, 10, 50, 100, 500],
        "currency": "EUR",  # the player's account currency
        "language": "pt_BR",
        "home_page": "https://casino.example/",
    }


def test_each_page_gets_a_fresh_nonce(live: tuple[GamePageApp, str]) -> None:
    app, token = live
    first, second = app.play(session=token), app.play(session=token)
    assert csp_nonce(first.headers) != csp_nonce(second.headers)
    assert len(csp_nonce(first.headers)) >= 16


def test_unknown_game_is_404(live: tuple[GamePageApp, str]) -> None:
    app, token = live
    assert_refused(app.play("zz_9999", session=token), 404, "This game does not exist.")


@pytest.mark.parametrize("application", ["a_op<script>", "a_op%3Cscript%3E", "a_op'\"", "..", "a_op&lt;"])
def test_hostile_application_in_the_path(live: tuple[GamePageApp, str], application: str) -> None:
    app, token = live
    reply = app.play(application, session=token)
    assert reply.status in (400, 404), reply
    assert "<script" not in reply.body.lower()
    assert application not in reply.body or application == ".."
    assert "gameLoaderOptions" not in reply.body
    if reply.headers.get("Content-Type", "").startswith("text/html"):
        assert reply.headers["Cache-Control"] == "no-store"
    # else: a character outside Powertools' route pattern ('"'): its own JSON "Not found", nothing reflected


def test_hostile_application_is_400(live: tuple[GamePageApp, str]) -> None:
    app, token = live
    assert_refused(app.play("a_op<script>", session=token), 400, "invalid parameters: application")


def test_path_traversal_does_not_reach_a_page(live: tuple[GamePageApp, str]) -> None:
    app, token = live
    reply = app.get("/play/../x", {"session": token})
    assert reply.status in (400, 404)
    assert "gameLoaderOptions" not in reply.body
    assert "../x" not in reply.body


def test_invalid_options_are_400(live: tuple[GamePageApp, str]) -> None:
    app, token = live
    for query, field in (
        ({"language": "de_DE"}, "language"),
        ({"kf_list": ",".join(["1"] * 13)}, "kf_list"),
        ({"home_page": "javascript:alert(1)"}, "home_page"),
        ({"home_page": "//evil.com"}, "home_page"),
        ({"currency": "<b>"}, "currency"),
    ):
        reply = app.play(session=token, **query)
        assert_refused(reply, 400, f"invalid parameters: {field}")
        for value in query.values():
            assert value not in reply.body


def test_hostile_query_key_is_not_reflected_unescaped(live: tuple[GamePageApp, str]) -> None:
    app, token = live
    reply = app.play(session=token, **{"<script>alert(1)</script>": "1"})
    assert reply.status == 400
    assert "<script" not in reply.body.lower()


def test_expired_session_is_403(live: tuple[GamePageApp, str]) -> None:
    app, token = live
    lambda_wallet().clock = lambda: time.time() + 24 * 60 * 60 + 1
    assert_refused(app.play(session=token), 403, "Your game session has expired")
    assert_refused(app.lobby(session=token), 403, "Your game session has expired")


def test_replaced_session_is_403(live: tuple[GamePageApp, str]) -> None:
    app, token = live
    newer = lambda_wallet().new_session("p1").token
    assert_refused(app.play(session=token), 403, "Your game session has expired")
    assert app.play(session=newer).status == 200


@pytest.mark.parametrize("session", ["p1.forged", "nobody.x", "not-a-token", "p2.abc"])
def test_unknown_session_is_403(live: tuple[GamePageApp, str], session: str) -> None:
    app, _ = live
    assert_refused(app.play(session=session), 403, "Your game session has expired")
    assert_refused(app.lobby(session=session), 403, "Your game session has expired")


def test_no_session(live: tuple[GamePageApp, str]) -> None:
    app, _ = live
    # /play checks its parameters first: a missing session is an invalid request; the lobby says "log in again".
    assert_refused(app.play(), 400, "invalid parameters: session")
    assert_refused(app.lobby(), 403, "Please log in again")


def test_no_catalogue_yet_is_503_then_the_published_one_serves(app: GamePageApp) -> None:
    lambda_wallet().create_player("p1", "FUN", Decimal(10))
    token = lambda_wallet().new_session("p1").token
    assert_refused(app.play(session=token), 503, "not available yet")
    assert_refused(app.lobby(session=token), 503, "not available yet")
    app.publish(json.dumps(config_document()).encode())
    assert app.play(session=token).status == 200
    assert app.lobby(session=token).status == 200


def test_lobby_lists_every_game(live: tuple[GamePageApp, str]) -> None:
    app, token = live
    reply = app.lobby(session=token, language="fr_FR")
    assert reply.status == 200, reply.body
    assert reply.headers["Cache-Control"] == "no-store"
    assert reply.headers["Referrer-Policy"] == "no-referrer"
    nonce = csp_nonce(reply.headers)
    page = reply.page
    assert page.find("style")[0].get("nonce") == nonce
    assert "<script" not in reply.body.lower()
    games = {}
    for section_type in ("slot", "egame", "betting"):
        assert page.find("section", **{"class": f"type-{section_type}"}), section_type
    items = re.findall(
        r'<li class="game" data-game="([^"]+)"><a href="([^"]+)"><img src="([^"]+)"[^>]*/><span>([^<]+)', reply.body
    )
    for game_id, href, thumbnail, name in items:
        games[game_id] = (href.replace("&amp;", "&"), thumbnail, name)
    assert games == {
        "a_ec": (f"/play/a_ec?session={token}&language=fr_FR", "/media/thumb/a_ec.png", "Emerald City"),
        "a_op": (f"/play/a_op?session={token}&language=fr_FR", "/media/thumb/a_op.png", "Ocean Pearl"),
        "e_keno": (f"/play/e_keno?session={token}&language=fr_FR", "/media/thumb/e_keno.png", "Turbo Keno"),
        "b_1009": (f"/play/b_1009?session={token}&language=fr_FR", "/media/thumb/b_1009.png", "Live Bets"),
    }
    # Grouped by type, in type order, and each link opens a page that works.
    body = reply.body
    assert body.index("type-betting") < body.index("type-egame") < body.index("type-slot")
    assert body.index('data-game="a_ec"') < body.index('data-game="a_op"')
    for game_id, (href, _, _) in games.items():
        parts = urlsplit(href)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        opened = app.play(parts.path.rsplit("/", 1)[1], **query)
        assert opened.status == 200, opened.body
        assert loader_options(opened.body)["game"] == game_id


def test_lobby_language_is_validated(live: tuple[GamePageApp, str]) -> None:
    app, token = live
    assert_refused(app.lobby(session=token, language="<script>"), 400, "invalid parameters: language")


def test_hostile_catalogue_reaches_the_pages_escaped(app: GamePageApp) -> None:
    document = config_document(a_op=HOSTILE, e_keno='<img src=x onerror="alert(1)">')
    document["applications"]["a_ec"]["preview"] = '"><script>alert(2)</script>.png'
    app.publish(json.dumps(document).encode())
    lambda_wallet().create_player("p1", "FUN", Decimal(10))
    token = lambda_wallet().new_session("p1").token

    page = app.play("a_op", session=token)
    assert page.status == 200
    assert_three_scripts_only(page.body)
    assert "<!--" not in page.body
    assert page.page.title == HOSTILE

    lobby = app.lobby(session=token)
    assert lobby.status == 200
    assert "<script" not in lobby.body.lower()
    assert "<img src=x" not in lobby.body
    assert HOSTILE in " ".join(lobby.page.text)


def test_a_corrupt_published_catalogue_is_503(live: tuple[GamePageApp, str]) -> None:
    app, token = live
    app.publish(b"{not json")
    assert_refused(app.play(session=token), 503, "not available yet")
    assert_refused(app.lobby(session=token), 503, "not available yet")


def test_unreadable_store_is_503(app: GamePageApp) -> None:
    lambda_wallet().create_player("p1", "FUN", Decimal(10))
    token = lambda_wallet().new_session("p1").token
    app.s3.delete_bucket(Bucket=BUCKET)  # S3 answers NoSuchBucket: StoreUnavailable
    assert_refused(app.play(session=token), 503, "not available yet")
    assert_refused(app.lobby(session=token), 503, "not available yet")


def test_the_game_page_url_parses_back_into_the_same_options() -> None:
    from urllib.parse import parse_qsl, urlsplit

    from wallet.catalogue.page import game_page_url

    options = parse_page_options(
        "a_op", {"session": "p1.tok", "language": "fr_FR", "kf": "5", "kf_list": "1,5", "home_page": "/lobby?x=1&y"}
    )
    url = urlsplit(game_page_url("https://site.example/", options))
    assert (url.scheme, url.netloc, url.path) == ("https", "site.example", "/play/a_op")
    assert parse_page_options("a_op", dict(parse_qsl(url.query))) == options
    bare = urlsplit(game_page_url("https://site.example", parse_page_options("a_op", {"session": "p1.tok"})))
    assert dict(parse_qsl(bare.query)) == {"session": "p1.tok"}  # the page's defaults stand for the rest

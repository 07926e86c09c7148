"""The game page (guide step 2) and the lobby: validated options, rendered with every value escaped for its context.

The guide's snippet shows only the loader's options object; we hand it to the loader as `window.gameLoaderOptions`
before the loader script runs. Values land in two contexts: HTML (escaped with html.escape) and a JavaScript object
literal (JSON with <, >, & and the line separators escaped, so no value can close the script element).
"""

from __future__ import annotations

import html
import json
import re
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from wallet.catalogue.games import APPLICATION_ID, GamesConfig

LANGUAGES = ("en_US", "ru_RU", "es_ES", "pt_PT", "pt_BR", "fr_FR")
DEFAULT_KF_LIST = (1, 5, 10, 50, 100, 500)
MAX_KF_LIST = 12
_HOME_PAGE = re.compile(r"(/(?!/)[^\s\"'<>\\]*)|(https?://[^\s\"'<>\\]+)")


class PageRequestError(ValueError):
    """A request for the game page that we refuse, with a message safe to show."""


class GamePageOptions(BaseModel):
    """The query of GET /play/{application}: what the player's site asks for."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    application: Annotated[str, Field(pattern=APPLICATION_ID)]
    session: Annotated[str, Field(min_length=1, max_length=256)]
    kf: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    kf_list: Annotated[list[Annotated[int, Field(ge=1, le=1_000_000)]], Field(min_length=1, max_length=MAX_KF_LIST)] = (
        Field(default_factory=lambda: list(DEFAULT_KF_LIST))
    )
    currency: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9]{1,16}$")] = None
    language: Literal["en_US", "ru_RU", "es_ES", "pt_PT", "pt_BR", "fr_FR"] = "en_US"
    home_page: Annotated[str, Field(max_length=512)] = "/"

    @field_validator("kf_list", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.strip("[]").split(",") if item.strip()]
        return value

    @field_validator("home_page")
    @classmethod
    def _relative_or_http(cls, value: str) -> str:
        if not _HOME_PAGE.fullmatch(value):
            raise ValueError("home_page must be a path on this site or an http(s) URL")
        return value


def parse_page_options(application: str, query: dict[str, str]) -> GamePageOptions:
    try:
        return GamePageOptions.model_validate({**query, "application": application})
    except ValidationError as exc:
        fields = sorted({str(error["loc"][0]) for error in exc.errors() if error["loc"]})
        raise PageRequestError(f"invalid parameters: {', '.join(fields) or 'request'}") from None


def game_page_url(site_url: str, options: GamePageOptions) -> str:
    """The game page's URL for these options: what GET /play/{application} parses back into the same options. Only
    the options given are in the query; the page's defaults stand for the rest."""
    given = options.model_dump(exclude_unset=True, exclude={"application"})
    query = {
        name: ",".join(str(item) for item in value) if isinstance(value, list) else str(value)
        for name, value in given.items()
    }
    return f"{site_url.rstrip('/')}/play/{options.application}?{urlencode(query)}"


def js_value(value: Any) -> str:
    """A JSON literal that is safe inside <script>: nothing in it can end the element or break the line."""
    text = json.dumps(value, ensure_ascii=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _page(title: str, body: str, head: str = "") -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n'
        '<meta http-equiv="Content-Type" content="text/html; charset=utf-8" />\n'
        f"<title>{html.escape(title)}</title>\n{head}</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def render_game_page(
    options: GamePageOptions,
    config: GamesConfig,
    currency: str,
    path_to_storage: str,
    customer_id: str,
    nonce: str,
) -> str:
    application = config.applications.get(options.application)
    if application is None:
        raise PageRequestError(f"unknown game: {options.application}")
    storage = path_to_storage.rstrip("/")
    loader_options = {
        "path": f"{storage}/",
        "game": options.application,
        "billing": customer_id,
        "token": options.session,
        "kf": str(options.kf),
        "kf_list": options.kf_list,
        "currency": options.currency or currency,
        "language": options.language,
        "home_page": options.home_page,
    }
    head = "\n".join(
        [
            '<meta http-equiv="X-UA-Compatible" content="IE=edge,chrome=1" />',
            '<meta name="viewport" content="width=device-width, initial-scale=1.0, maximum-scale=1.0, '
            'minimum-scale=1.0, user-scalable=no, minimal-ui" />',
            '<meta name="apple-mobile-web-app-capable" content="yes" />',
            '<meta name="mobile-web-app-capable" content="yes" />',
            '<meta name="apple-mobile-web-app-status-bar-style" content="black" />',
            f'<style nonce="{html.escape(nonce)}">'
            "html,body{margin:0;height:100%;background:#000}#game-content{width:100%;height:100%}</style>",
            "",
        ]
    )
    storage_attr = html.escape(storage, quote=True)
    body = "\n".join(
        [
            f'<script nonce="{html.escape(nonce)}">window.gameLoaderOptions = {js_value(loader_options)};</script>',
            f'<script type="text/javascript" src="{storage_attr}/prod_flash_data.js"></script>',
            f'<script src="{storage_attr}/loader/build/app.js"></script>',
            '<div id="game-content"></div>',
        ]
    )
    return _page(application.display_name(), body, head)


LOBBY_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:24px;background:#101820;color:#eee}"
    "ul{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:16px}"
    "li a{display:flex;flex-direction:column;align-items:center;gap:6px;color:#eee;text-decoration:none}"
    "h2{text-transform:capitalize;border-bottom:1px solid #345}"
)


def render_lobby(config: GamesConfig, session: str, path_to_storage: str, nonce: str, language: str = "en_US") -> str:
    storage = path_to_storage.rstrip("/")
    sections = []
    by_type: dict[str, list[tuple[str, Any]]] = {}
    for application_id, application in config.applications.items():
        by_type.setdefault(application.type, []).append((application_id, application))
    for game_type in sorted(by_type):
        items = []
        for application_id, application in sorted(by_type[game_type], key=lambda pair: pair[1].display_name()):
            query = f"session={_url_quote(session)}&language={_url_quote(language)}"
            href = html.escape(f"/play/{_url_quote(application_id)}?{query}", quote=True)
            thumbnail = html.escape(f"{storage}/{application.preview.lstrip('/')}", quote=True)
            name = html.escape(application.display_name())
            items.append(
                f'<li class="game" data-game="{html.escape(application_id, quote=True)}">'
                f'<a href="{href}"><img src="{thumbnail}" alt="" width="120" height="90" /><span>{name}</span></a>'
                "</li>"
            )
        sections.append(
            f'<section class="type-{html.escape(game_type)}"><h2>{html.escape(game_type)}</h2>'
            f"<ul>{''.join(items)}</ul></section>"
        )
    head = f'<style nonce="{html.escape(nonce)}">{LOBBY_STYLE}</style>\n'
    return _page("Lobby", "<h1>Games</h1>\n" + "\n".join(sections), head)


def render_error(message: str) -> str:
    return _page("Cannot open the game", f'<h1>Cannot open the game</h1><p class="error">{html.escape(message)}</p>')


def _url_quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")

"""`make invoke` without docker: events/expected.json against the events and their generator, the reply checks, SAM's
output, the table, the chains and the network targets (local/wallet_local/invoke.py). The run itself, through SAM's
emulator, is `make invoke` (the `invoke` stage of `make test`)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from wallet_local import invoke
from wallet_local.invoke import Endpoints, Expectation, Manifest, Row, Target
from wallet_local.paths import REPO_ROOT, TEMPLATE
from wallet_local.table import _CloudFormationLoader

EVENTS = REPO_ROOT / "events"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("events_generate", EVENTS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generate() -> ModuleType:
    return _generator()


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    return invoke.load_manifest()


def _env_vars() -> dict[str, dict[str, str]]:
    return json.loads((EVENTS / "env.json").read_text(encoding="utf-8"))


# --- the manifest ----------------------------------------------------------------------------------------------------


def test_the_manifest_names_every_sample_event_once(manifest: Manifest) -> None:
    expectations = manifest.replay
    rows = [expectation.name for expectation in expectations]
    assert len(rows) == len(set(rows))  # an event sent again has a label of its own
    env_files = {"env.json", "operator-env.json", "expected.json"}
    on_disk = {path.name for path in EVENTS.glob("*.json")} - env_files
    assert {expectation.event for expectation in expectations} == on_disk
    assert {expectation.env_vars for expectation in expectations} <= env_files - {"expected.json"}


def test_the_billing_replies_are_the_generators_in_its_order(generate: ModuleType, manifest: Manifest) -> None:
    expectations = manifest.replay
    billing = [e for e in expectations if e.function == "BillingFunction"]
    assert [e.event for e in billing] == [f"{name}.json" for name in generate.SAMPLES]
    for expectation, (_, _, reply) in zip(billing, generate.SAMPLES.values(), strict=True):
        assert expectation.status_code == 200
        assert expectation.body == json.loads(reply), expectation.event
        assert expectation.chain == "billing"


def test_the_site_events_go_to_the_generators_functions(generate: ModuleType, manifest: Manifest) -> None:
    expectations = manifest.replay
    site = {e.event: e.function for e in expectations if e.chain == "site"}
    assert site == {f"{name}.json": function for name, (function, *_) in generate.SITE_SAMPLES.items()}
    # The sync publishes first: the pages read what it published.
    order = [e.event for e in expectations if e.chain == "site"]
    assert order[0] == "games_sync_scheduled.json"


def test_the_player_and_secrets_are_the_ones_the_events_are_signed_for(
    generate: ModuleType, manifest: Manifest
) -> None:
    player = manifest.player
    assert player == {
        "id": generate.PLAYER,
        "currency": "FUN",
        "opening_balance": generate.OPENING_BALANCE,
        "session": generate.SESSION,
    }
    endpoints = Endpoints.from_env_vars(_env_vars())
    assert (endpoints.salt, endpoints.session_key, endpoints.table) == (
        generate.SALT,
        generate.SESSION_KEY,
        "wallet-local",
    )
    assert endpoints.bucket == generate.CATALOGUE_BUCKET


def test_every_function_of_the_manifest_is_in_the_template(manifest: Manifest) -> None:
    resources = yaml.load(TEMPLATE.read_text(), Loader=_CloudFormationLoader)["Resources"]  # noqa: S506
    functions = {name for name, resource in resources.items() if resource["Type"] == "AWS::Serverless::Function"}
    expectations = manifest.replay
    assert {e.function for e in expectations} <= functions


def test_the_ledger_balances_are_the_last_replies(manifest: Manifest) -> None:
    ledger = {item["player"]: item for item in manifest.ledger}
    billing = [e for e in manifest.replay if e.function == "BillingFunction" and "balance" in (e.body or {})]
    assert ledger[manifest.player["id"]]["balance"] == billing[-1].body["balance"]
    # The opening entry, then bet, win, the package and its partial cancel (no entry for the replay, the refusals or
    # the balance request).
    assert ledger[manifest.player["id"]]["entries"] == 5
    operator = [
        e for e in manifest.replay if e.function == "OperatorFunction" and e.body_has and "balance" in e.body_has
    ]
    assert ledger["alice"] == {"player": "alice", "balance": operator[-1].body_has["balance"], "entries": 2}


def test_the_operator_events_use_their_own_env_file_on_the_same_services(manifest: Manifest) -> None:
    operator = [e for e in manifest.replay if e.function == "OperatorFunction"]
    assert operator and {e.env_vars for e in operator} == {"operator-env.json"}
    env = json.loads((EVENTS / "operator-env.json").read_text(encoding="utf-8"))["OperatorFunction"]
    billing = _env_vars()["BillingFunction"]
    for key in ("AWS_ENDPOINT_URL_DYNAMODB", "WALLET_TABLE", "WALLET_SESSION_KEY"):
        assert env[key] == billing[key], key


def test_an_unknown_key_in_the_manifest_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown keys"):
        Expectation.from_json({"event": "x.json", "function": "F", "statuscode": 200})


# --- the checks ------------------------------------------------------------------------------------------------------

BILLING = Expectation("bet.json", "BillingFunction", status_code=200, body={"status": "OK", "balance": 99900})
PAGE = Expectation("lobby.json", "GamePageFunction", status_code=200, content_type="text/html", contains=("a", "b"))
SYNC = Expectation("sync.json", "GamesSyncFunction", result={"changed": ["x"], "invalidation": "no-distribution"})


def _http(status: int, body: str, **headers: Any) -> dict[str, Any]:
    return {"statusCode": status, "body": body, "isBase64Encoded": False, **headers}


def test_a_billing_reply_must_be_exact() -> None:
    assert invoke.check(BILLING, _http(200, '{"status":"OK","balance":99900}')) == (
        True,
        '200 {"status":"OK","balance":99900}',
    )
    assert invoke.check(BILLING, _http(200, '{"status":"OK","balance":99901}'))[0] is False
    assert invoke.check(BILLING, _http(503, '{"status":"OK","balance":99900}'))[0] is False
    assert invoke.check(BILLING, _http(200, "not json")) == (False, "200 not json")


def test_a_page_needs_its_content_type_and_every_string() -> None:
    multi = {"multiValueHeaders": {"Content-Type": ["text/html; charset=utf-8"]}}
    assert invoke.check(PAGE, _http(200, "a b", **multi)) == (True, "200 text/html 2/2 strings")
    assert invoke.check(PAGE, _http(200, "a", **multi)) == (False, "200 text/html 1/2 strings")
    assert invoke.check(PAGE, _http(200, "a b", headers={"content-type": "application/json"}))[0] is False
    assert invoke.check(PAGE, _http(200, "a b"))[1] == "200 (no Content-Type) 2/2 strings"


def test_a_result_needs_the_listed_keys_and_shows_the_others() -> None:
    reply = {"changed": ["x"], "invalidation": "no-distribution", "games": 4}
    assert invoke.check(SYNC, reply) == (True, '{"changed":["x"],"invalidation":"no-distribution","games":4}')
    assert invoke.check(SYNC, {**reply, "changed": []})[0] is False
    assert invoke.check(SYNC, "an error")[0] is False
    assert invoke.check(BILLING, {"errorMessage": "boom"})[0] is False


def test_sams_output_is_the_last_json_document() -> None:
    assert invoke.parse_invoke_output('{"statusCode": 200}') == {"statusCode": 200}
    assert invoke.parse_invoke_output('noise\n{"a": 1}\n') == {"a": 1}
    with pytest.raises(ValueError, match="no JSON result"):
        invoke.parse_invoke_output("Error: no such function\n")


def test_the_table_has_a_line_per_row_and_cuts_long_cells() -> None:
    rows = [Row("bet.json", "200 ok", "200 ok", 4.25, True), Row("x.json", "e" * 100, "g", 1.0, False)]
    lines = invoke.format_table(rows, width=20).splitlines()
    assert lines[0].split() == ["event", "expected", "got", "seconds", "result"]
    assert lines[1].split() == ["bet.json", "200", "ok", "200", "ok", "4.2", "ok"]
    assert "e" * 17 + "..." in lines[2]
    assert lines[2].endswith("MISMATCH")


# --- the services, the chains, the network -------------------------------------------------------------------------


def test_the_services_listen_where_env_json_sends_the_functions() -> None:
    endpoints = Endpoints.from_env_vars(_env_vars())
    assert (endpoints.dynamodb, endpoints.aws, endpoints.provider) == (8000, 5000, 8001)
    commands = invoke.service_commands(endpoints, "10.213.7.2", python="python")
    assert commands["dynamodb-local"][-2:] == ["-port", "8000"]
    assert commands["moto"][-4:] == ["-H", "10.213.7.2", "-p", "5000"]
    assert commands["provider-files"][4:6] == ["--bind", "10.213.7.2"]


def test_env_json_must_name_the_services_by_the_containers_host_name() -> None:
    env_vars = _env_vars()
    env_vars["BillingFunction"] = {**env_vars["BillingFunction"], "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:8000"}
    with pytest.raises(ValueError, match=r"host\.docker\.internal"):
        Endpoints.from_env_vars(env_vars)


def test_each_chain_keeps_its_order_and_the_rows_come_back_in_the_manifests(
    manifest: Manifest,
) -> None:
    expectations = manifest.replay
    chains = invoke.chains(expectations)
    assert [len(chain) for chain in chains] == [9, 3, 5, 1]
    assert [e for chain in chains for e in chain] == expectations  # billing, the site, the operator, the archive

    class FakeSam:
        def invoke(self, expectation: Expectation) -> Row:
            return Row(expectation.name, "", "", 0.0, True)

    rows = invoke.replay(FakeSam(), expectations, jobs=2)  # type: ignore[arg-type]
    assert [row.name for row in rows] == [e.name for e in expectations]


def test_sam_is_asked_for_the_emulator_without_a_pull(tmp_path: Path) -> None:
    sam = invoke.Sam(tmp_path / "template.yaml", ["file://p.yaml", "Architecture=x86_64"], "10.0.0.2", tmp_path, {})
    command = sam.invoke_command(BILLING)
    assert command[1:3] == ["local", "invoke"]
    assert "--skip-pull-image" in command
    assert command[command.index("--parameter-overrides") + 1 :][:2] == ["file://p.yaml", "Architecture=x86_64"]
    assert command[command.index("--add-host") + 1] == "host.docker.internal:10.0.0.2"
    assert command[-3:] == ["--event", str(EVENTS / "bet.json"), "BillingFunction"]


class _ScriptedSam(invoke.Sam):
    """The emulator's answers, one per invoke, without docker."""

    answers: list[tuple[str, str]]
    answers_given: list[str]

    def _invoke_once(self, expectation: Expectation, attempt: int = 1) -> Row:
        assert attempt == len(self.answers_given) + 1
        stdout, stderr = self.answers.pop(0)
        self.answers_given.append(stdout)
        try:
            reply = invoke.parse_invoke_output(stdout)
        except ValueError as exc:
            return Row(expectation.name, expectation.describe(), "no result", 1.0, False, f"{exc}\n{stderr}")
        ok, got = invoke.check(expectation, reply)
        return Row(expectation.name, expectation.describe(), got, 1.0, ok)


LOST = "END RequestId: 1\nFunction 'X' timed out after 10 seconds\nNo response from invoke container for X"
BET_REPLY = json.dumps({"statusCode": 200, "body": json.dumps({"status": "OK", "balance": 99900, "currency": "FUN"})})


@pytest.mark.parametrize(
    ("answers", "ok", "calls"),
    [
        ([("", LOST), (BET_REPLY, "")], True, 2),  # the emulator lost the reply once: sent again, and it matches
        ([("", LOST), ("", LOST)], False, 2),  # lost twice: a failure, not a third try
        ([("", "Traceback: KeyError")], False, 1),  # the function failed: never sent again
    ],
)
def test_an_event_is_sent_again_only_when_the_emulator_lost_its_reply(
    tmp_path: Path, manifest: Manifest, answers: list[tuple[str, str]], ok: bool, calls: int
) -> None:
    bet = next(e for e in manifest.replay if e.event == "bet.json")
    sam = _ScriptedSam(tmp_path / "template.yaml", [], "10.0.0.2", tmp_path, {})
    sam.answers, sam.answers_given = list(answers), []
    row = sam.invoke(bet)
    assert row.ok is ok
    assert len(answers) - len(sam.answers) == calls
    assert ("sent twice" in row.got) is (calls == 2)


def _reply(status: int, body: dict[str, Any]) -> str:
    return json.dumps({"statusCode": status, "body": json.dumps(body)})


DEPOSIT = {"balance": 6000, "currency": "FUN", "entry": {"entry_id": "operator:pay-778", "account_version": 1}}


@pytest.mark.parametrize(
    ("event", "second", "ok"),
    [
        # The first send landed before the emulator lost its reply: the replay's reply is the right one.
        ("operator-deposit.json", _reply(200, DEPOSIT), True),
        ("operator-create-player.json", _reply(409, {"error": {"code": "exists", "message": "alice exists"}}), True),
        # A reply the second send cannot get (the first one's, another refusal): a failure, not a pass.
        ("operator-deposit.json", _reply(201, DEPOSIT), False),
        ("operator-create-player.json", _reply(409, {"error": {"code": "conflict", "message": "?"}}), False),
    ],
)
def test_an_event_sent_again_must_get_what_a_replay_gets(
    tmp_path: Path, manifest: Manifest, event: str, second: str, ok: bool
) -> None:
    expectation = next(e for e in manifest.replay if e.event == event and not e.label)
    sam = _ScriptedSam(tmp_path / "template.yaml", [], "10.0.0.2", tmp_path, {})
    sam.answers, sam.answers_given = [("", LOST), (second, "")], []
    row = sam.invoke(expectation)
    assert row.ok is ok, row.got
    assert "sent twice" in row.got


def test_replayed_keys_are_checked_like_the_entrys_own() -> None:
    with pytest.raises(ValueError, match="unknown keys in replayed"):
        Expectation.from_json({"event": "x.json", "function": "F", "statusCode": 201, "replayed": {"status": 200}})
    entry = Expectation.from_json(
        {"event": "x.json", "function": "F", "statusCode": 201, "replayed": {"statusCode": 200}}
    )
    assert (entry.sent_again().status_code, entry.sent_again().replayed) == (200, None)
    plain = Expectation.from_json({"event": "x.json", "function": "F", "statusCode": 200})
    assert plain.sent_again() is plain


def test_the_network_targets() -> None:
    targets = invoke.network_targets("10.0.0.2", 8000, "10.0.0.1", "192.0.2.1", host_reachable=False)
    assert targets == [
        Target("services", "10.0.0.2", 8000, "open"),
        Target("host", "10.0.0.1", 8000, "blocked"),
        Target("gateway", "192.0.2.1", 80, "blocked"),
        Target("internet", "1.1.1.1", 443, "blocked"),
    ]
    without = invoke.network_targets("10.0.0.2", 8000, "10.0.0.1", None, host_reachable=True)
    assert [target.name for target in without] == ["services", "internet"]


# --- where it is wired in --------------------------------------------------------------------------------------------


def test_make_test_runs_the_invoke_stage_after_e2e() -> None:
    stages = [
        line.split()[1]
        for line in (REPO_ROOT / "scripts" / "test.sh").read_text().splitlines()
        if line.startswith("stage ")
    ]
    assert stages.index("invoke") == stages.index("e2e") + 1


def test_the_readmes_give_the_one_command() -> None:
    events_readme = (EVENTS / "README.md").read_text(encoding="utf-8")
    assert "make invoke" in events_readme
    assert "expected.json" in events_readme
    assert "make invoke" in (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def test_body_has_checks_only_the_listed_keys() -> None:
    expectation = Expectation(
        "d.json", "OperatorFunction", status_code=201, body_has={"balance": 6000}, contains=("x",)
    )
    assert invoke.check(expectation, _http(201, '{"balance": 6000, "entry": "x"}')) == (
        True,
        '201 {"balance":6000,...} 1/1 strings',
    )
    assert invoke.check(expectation, _http(201, '{"entry": "x"}'))[0] is False
    assert expectation.describe() == '201 {"balance":6000,...} 1/1 strings'
    assert Expectation.from_json({"event": "d.json", "function": "F", "label": "d again"}).name == "d again"

"""One cold start, in a fresh interpreter: import a handler module by path, stub its AWS clients, serve the first
request, print `BENCH_RESULT {json}`. Run by bench/coldstart.py (not imported by the bench package)."""

import time

STARTED = time.perf_counter()

import importlib.util  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# Lambda puts the layer on sys.path as /opt/python; the same here (instead of the editable-install finder).
sys.path.insert(0, str(ROOT / "layers" / "wallet"))


class _Absent:
    """--lambda-like: the python3.13 runtime ships boto3/botocore but not awscrt or pyOpenSSL, which this venv has
    (aws-sam-cli, moto). botocore imports both when present (CRT auth, urllib3's pyopenssl); hide them."""

    def find_spec(self, name: str, *_: object) -> None:
        if name.split(".", maxsplit=1)[0] in ("awscrt", "_awscrt", "OpenSSL"):
            raise ImportError(f"{name} hidden (--lambda-like)")


if "--lambda-like" in sys.argv:
    sys.meta_path.insert(0, _Absent())


def main() -> None:
    function = sys.argv[1]
    spec = importlib.util.spec_from_file_location(f"cold_{function}", ROOT / "functions" / function / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    imported = time.perf_counter()
    served = None
    if function == "billing":
        served = _serve_billing(module)
    elif function == "game_page":
        served = _serve_game_page(module)
    done = time.perf_counter()
    result = {
        "function": function,
        "import_ms": (imported - STARTED) * 1000,
        "first_request_ms": (done - imported) * 1000,
        "total_ms": (done - STARTED) * 1000,
        "served": served,
    }
    print("BENCH_RESULT " + json.dumps(result), flush=True)


def _serve_billing(module: object) -> str:
    from botocore.stub import Stubber

    sys.path.insert(0, str(ROOT))
    from bench.common import LambdaContext, api_gateway_event, do_body, slot_tag, stub_account_item

    token = "cold." + "x" * 43  # a session token: <player>.<secret>
    stubber = Stubber(module.wallet.repository.client)  # type: ignore[attr-defined]
    stubber.add_response("transact_get_items", {"Responses": [{"Item": stub_account_item("cold", token)}, {}]})
    stubber.add_response("transact_write_items", {})
    stubber.activate()
    event = api_gateway_event(do_body(token, "cold-1", minus=100, tag=slot_tag("cold-round")))
    reply = module.lambda_handler(event, LambdaContext())  # type: ignore[attr-defined]
    return f"{reply['statusCode']} {json.loads(reply['body'])['status']}"


def _serve_game_page(module: object) -> str:
    sys.path.insert(0, str(ROOT))
    from bench.common import LambdaContext, api_gateway_event

    # A refused page (bad parameters): the resolver, logger and metrics run, no AWS call is needed.
    event = api_gateway_event("")
    event.update(
        httpMethod="GET",
        path="/play/a_op",
        resource="/play/{application}",
        body=None,
        pathParameters={"application": "a_op"},
        queryStringParameters={"kf": "not-a-number"},
    )
    reply = module.lambda_handler(event, LambdaContext())  # type: ignore[attr-defined]
    return str(reply["statusCode"])


main()

"""One cold start, in a fresh interpreter started as the Lambda runtime would: import a handler module by path, then
serve its first request, and print `BENCH_RESULT {json}`. Run by bench/coldstart.py (not imported by the bench
package): it may run under `python -S` with only the layer's packages on sys.path, so it imports nothing but the
standard library before the handler.

    coldstart_probe.py FUNCTION SETUP_JSON

SETUP_JSON holds `paths` (prepended to sys.path, like Lambda's /opt/python), `event` (the first request; null for
an import-only probe) and optionally `handler_file` (another module than functions/FUNCTION/app.py: the floor). The
AWS calls of the first request go over HTTP to the fake endpoints bench/coldstart.py runs
(AWS_ENDPOINT_URL_DYNAMODB / _SSM in the environment), so SigV4, urllib3 and X-Ray's botocore patch are all paid.
"""

import time

STARTED = time.perf_counter()

import importlib.util  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


class LambdaContext:
    """What Powertools reads of the Lambda context. Not wallet_local.front's: only the layer is importable here."""

    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.memory_limit_in_mb = 1024
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def main() -> None:
    function, setup_path = sys.argv[1], sys.argv[2]
    setup = json.loads(Path(setup_path).read_text(encoding="utf-8"))
    sys.path[:0] = setup["paths"]
    handler_file = setup.get("handler_file") or ROOT / "functions" / function / "app.py"
    spec = importlib.util.spec_from_file_location(f"cold_{function}", handler_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    imported = time.perf_counter()
    served = None
    if setup["event"] is not None:
        reply = module.lambda_handler(setup["event"], LambdaContext(function))
        body = json.loads(reply["body"]) if reply["body"].startswith("{") else {}
        served = f"{reply['statusCode']} {body.get('status', '')}".strip()
    done = time.perf_counter()
    result = {
        "function": function,
        "import_ms": (imported - STARTED) * 1000,
        "first_request_ms": (done - imported) * 1000,
        "total_ms": (done - STARTED) * 1000,
        # The process's CPU time to here (interpreter start-up included): what a busy machine's load barely moves.
        "cpu_ms": time.process_time() * 1000,
        "served": served,
        "python": sys.version.split()[0],
    }
    print("BENCH_RESULT " + json.dumps(result), flush=True)


main()

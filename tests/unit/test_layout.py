"""The shape of the package (README, "Where things live"): wings that import downward only, and a deployed package
that never imports the local development stack."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "layers" / "wallet" / "wallet"
MODULES = sorted(
    ".".join(("wallet", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
    for path in PACKAGE.rglob("*.py")
)
# Who may import whom: the money path stands on its own; the catalogue and the operator side use it; only bootstrap
# (and the operator's CLI, an entry point) wire everything together.
MAY_IMPORT = {
    "wallet.money": {"wallet.money", "wallet.settings"},
    "wallet.catalogue": {"wallet.catalogue", "wallet.money", "wallet.settings"},
    "wallet.operator": {"wallet.operator", "wallet.money", "wallet.catalogue", "wallet.settings", "wallet.bootstrap"},
    "wallet.settings": {"wallet.money"},
    "wallet.bootstrap": {"wallet.money", "wallet.catalogue", "wallet.operator", "wallet.settings"},
}


def _imports(module: str) -> set[str]:
    relative = module.removeprefix("wallet").lstrip(".").replace(".", "/")
    path = PACKAGE / f"{relative}.py" if (PACKAGE / f"{relative}.py").exists() else PACKAGE / relative / "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def _wing(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_every_module_is_in_a_wing() -> None:
    assert {_wing(m) for m in MODULES} - {"wallet"} == set(MAY_IMPORT)


def test_wings_import_downward_only() -> None:
    for module in MODULES:
        if module == "wallet":
            continue
        ours = {_wing(name) for name in _imports(module) if name == "wallet" or name.startswith("wallet.")}
        assert ours <= MAY_IMPORT[_wing(module)], (module, ours - MAY_IMPORT[_wing(module)])


def test_the_deployed_package_never_imports_the_local_stack() -> None:
    # Statically: no import of it anywhere in the layer...
    for module in MODULES:
        assert not {name for name in _imports(module) if name.split(".")[0] == "wallet_local"}, module
    # ...and really: every module imports in a fresh interpreter where wallet_local cannot be found.
    probe = (
        "import importlib, sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'wallet_local':\n"
        "            raise ImportError('the layer imported the local stack: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        f"for name in {MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'wallet_local']\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def test_the_check_can_fail() -> None:
    assert "wallet_local.stack" in _imports_of_text("from wallet_local.stack import run_local_stack\n")


def _imports_of_text(text: str) -> set[str]:
    return {n.module for n in ast.walk(ast.parse(text)) if isinstance(n, ast.ImportFrom) and n.module}


def test_handlers_build_nothing_at_import_and_tests_import_each_once() -> None:
    """A handler's module-level code makes no client and reads no settings (it gets them from bootstrap's cached
    factories on first use), so a test process imports each handler once, through `load_function`, and each test's
    first request builds its own wallet and catalogue."""
    functions = PACKAGE.parents[2] / "functions"
    for app in sorted(functions.glob("*/app.py")):
        for node in ast.parse(app.read_text()).body:
            if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Call):
                called = ast.unparse(node.value.func)
                # Powertools' own objects and the router are made at import (as their docs do); ours are not.
                assert called in {"Logger", "Metrics", "Tracer", "APIGatewayRestResolver"}, (app, called)
    tests = PACKAGE.parents[2] / "tests"
    importers = [
        path.relative_to(tests)
        for path in tests.rglob("*.py")
        if "import_file(" in path.read_text() and path.name != "test_layout.py"
    ]
    assert importers == [], "import handlers with tests.support.lambda_function (once per process)"

#!/usr/bin/env bash
# Build the SAM application into a temporary directory and check what would be deployed:
#   - the wallet layer holds python/wallet/ (every module of layers/wallet/wallet/) and its pinned dependencies;
#   - every compiled extension in the layer is ARM aarch64 (the functions run on arm64), pydantic_core's above all;
#   - every module of the layer has unchecked-hash bytecode for python3.13 (scripts/check_bytecode.py): /opt is
#     read-only in Lambda, so a module without it is compiled again on every cold start;
#   - the archive layer (duckdb, for LedgerExportFunction) holds the pinned duckdb with its native module built for
#     ARM aarch64, and bytecode beside every module, as the wallet layer;
#   - each function (BillingFunction, GamesSyncFunction, GamePageFunction, OperatorFunction, LedgerExportFunction)
#     holds its app.py and no wallet/ of its own; the exporter with both layers stays under Lambda's 250 MB unzipped.
# Prints the unzipped and zipped sizes of the layers and of each function. Exits non-zero, loudly, on any failure.
#
# Usage (from the repository root, with the venv at .venv):  scripts/check_build.sh
# Needs python3.13 on PATH (SAM builds with it). With pyenv, PYENV_VERSION is set to include an installed 3.13 unless
# it is set already. Needs network access to PyPI. Set KEEP_BUILD=1 to keep the build directory for inspection.
set -euo pipefail

fail() {
    echo "check_build: FAIL: $*" >&2
    exit 1
}
info() { echo "check_build: $*"; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SAM="$ROOT/.venv/bin/sam"
PYTHON="$ROOT/.venv/bin/python"
[[ -x "$SAM" ]] || fail "$SAM not found: create the venv (.venv) with the dev extras"
[[ -x "$PYTHON" ]] || fail "$PYTHON not found"
command -v file >/dev/null || fail "the 'file' command is needed to check the architecture of compiled extensions"
[[ -f layers/wallet/requirements.txt ]] || fail "layers/wallet/requirements.txt is missing"
[[ -f layers/archive/requirements.txt ]] || fail "layers/archive/requirements.txt is missing"

# SAM's python3.13 workflow looks for python3.13 on PATH.
if [[ -z "${PYENV_VERSION:-}" ]] && command -v pyenv >/dev/null; then
    py313="$(pyenv versions --bare 2>/dev/null | grep -E '^3\.13(\.[0-9]+)?$' | tail -n 1 || true)"
    if [[ -n "$py313" ]]; then
        export PYENV_VERSION="$(pyenv version-name 2>/dev/null | cut -d: -f1):$py313"
    fi
fi
python3.13 --version >/dev/null 2>&1 || fail "python3.13 is not on PATH (with pyenv: PYENV_VERSION=<default>:3.13.x)"

export SAM_CLI_TELEMETRY=0
BUILD_DIR="$(mktemp -d "${TMPDIR:-/tmp}/wallet-sam-build.XXXXXX")"
if [[ "${KEEP_BUILD:-0}" == "1" ]]; then
    trap 'info "build kept in $BUILD_DIR"' EXIT
else
    trap 'rm -rf "$BUILD_DIR"' EXIT
fi

info "sam build (python $(python3.13 --version 2>&1 | cut -d" " -f2)) into $BUILD_DIR"
# --build-dir and --cache-dir in the temporary directory, and --no-cached (samconfig.toml asks for cached builds,
# which keep dependencies under .aws-sam/deps): nothing under .aws-sam/ is touched.
if ! "$SAM" build --template-file template.yaml --build-dir "$BUILD_DIR/build" --cache-dir "$BUILD_DIR/cache" \
    --no-cached --parallel >"$BUILD_DIR/build.log" 2>&1; then
    cat "$BUILD_DIR/build.log" >&2
    fail "sam build failed"
fi

LAYER="$BUILD_DIR/build/WalletLayer"
ARCHIVE_LAYER="$BUILD_DIR/build/ArchiveLayer"
FUNCTIONS=(BillingFunction GamesSyncFunction GamePageFunction OperatorFunction LedgerExportFunction)
[[ -d "$LAYER/python" ]] || fail "the layer build has no python/ directory ($LAYER)"
[[ -d "$ARCHIVE_LAYER/python" ]] || fail "the archive layer build has no python/ directory ($ARCHIVE_LAYER)"
FUNCTION_DIRS=()
for function in "${FUNCTIONS[@]}"; do
    [[ -d "$BUILD_DIR/build/$function" ]] || fail "the $function build is missing ($BUILD_DIR/build/$function)"
    FUNCTION_DIRS+=("$BUILD_DIR/build/$function")
done

# The wallet package lands at python/wallet, with every module of the source tree.
[[ -f "$LAYER/python/wallet/__init__.py" ]] || fail "python/wallet/__init__.py is not in the layer"
while IFS= read -r source; do
    module="${source#layers/wallet/wallet/}"
    [[ -f "$LAYER/python/wallet/$module" ]] || fail "python/wallet/$module is not in the layer"
done < <(find layers/wallet/wallet -name '*.py' -not -path '*/__pycache__/*')
# The deployed package never imports the local development stack.
if grep -rn "wallet_local" "$LAYER/python/wallet" --include='*.py' >/dev/null; then
    fail "the layer's wallet package mentions wallet_local: $(grep -rln wallet_local "$LAYER/python/wallet" --include='*.py')"
fi
info "layer: python/wallet/ holds $(find "$LAYER/python/wallet" -name '*.py' | wc -l) modules"

# The pinned dependencies are there, at the pinned versions.
check_pins() {
    local layer="$1" requirements="$2" requirement name version dist
    while IFS= read -r requirement; do
        requirement="${requirement%%#*}"
        requirement="$(echo "$requirement" | tr -d '[:space:]')"
        [[ -z "$requirement" ]] && continue
        name="${requirement%%[*}"
        name="${name%%=*}"
        version="${requirement##*==}"
        dist="$(echo "$name" | tr '-' '_')"
        compgen -G "$layer/python/${dist}-${version}.dist-info" >/dev/null \
            || fail "$name==$version is not installed in $(basename "$layer")"
    done <"$requirements"
}
check_pins "$LAYER" layers/wallet/requirements.txt
check_pins "$ARCHIVE_LAYER" layers/archive/requirements.txt

# Compiled extensions: pydantic_core must be there, and everything compiled must be aarch64.
core_so="$(find "$LAYER/python/pydantic_core" -name '_pydantic_core*.so' | head -n 1)"
[[ -n "$core_so" ]] || fail "pydantic_core's compiled extension is not in the layer"
core_file="$(file -b "$core_so")"
info "$(basename "$core_so"): $core_file"
[[ "$core_file" == *"ARM aarch64"* ]] || fail "pydantic_core is not built for ARM aarch64"
# duckdb's engine is one native module (_duckdb.abi3.so): it must be there, for the deployed architecture.
duckdb_so="$(find "$ARCHIVE_LAYER/python" -maxdepth 2 -name '_duckdb*.so' | head -n 1)"
[[ -n "$duckdb_so" ]] || fail "duckdb's native module (_duckdb*.so) is not in the archive layer"
duckdb_file="$(file -b "$duckdb_so")"
info "$(basename "$duckdb_so"): $duckdb_file"
[[ "$duckdb_file" == *"ARM aarch64"* ]] || fail "duckdb is not built for ARM aarch64"
while IFS= read -r -d '' so; do
    description="$(file -b "$so")"
    [[ "$description" == *"ARM aarch64"* ]] || fail "not aarch64: ${so#"$BUILD_DIR/build"/} ($description)"
done < <(find "$LAYER" "$ARCHIVE_LAYER" "${FUNCTION_DIRS[@]}" -name '*.so*' -type f -print0)

# Bytecode beside every module of the layers (layers/wallet/Makefile and layers/archive/Makefile compile it).
"$PYTHON" scripts/check_bytecode.py "$LAYER/python" || fail "the layer ships modules without usable bytecode"
"$PYTHON" scripts/check_bytecode.py "$ARCHIVE_LAYER/python" \
    || fail "the archive layer ships modules without usable bytecode"

# Each function ships only its handler; the shared code comes from the layer.
for function in "${FUNCTIONS[@]}"; do
    [[ -f "$BUILD_DIR/build/$function/app.py" ]] || fail "app.py is not in the $function build"
    [[ ! -d "$BUILD_DIR/build/$function/wallet" ]] \
        || fail "the $function build bundles its own wallet/ (it must come from the layer)"
done
info "functions: ${FUNCTIONS[*]} each hold app.py"

for sdk in boto3 botocore; do
    if [[ -d "$LAYER/python/$sdk" ]]; then
        info "note: the layer carries $sdk $(find "$LAYER/python" -maxdepth 1 -name "$sdk-*.dist-info" \
            | sed -E "s/.*$sdk-(.*)\.dist-info/\1/") (it shadows the Lambda runtime's copy)"
    fi
done

sizes() {
    "$PYTHON" - "$1" "$2" <<'EOF'
import os, sys, zipfile, io
label, root = sys.argv[1], sys.argv[2]
total, buffer = 0, io.BytesIO()
with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            total += os.path.getsize(path)
            archive.write(path, os.path.relpath(path, root))
def size(n):
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"
print(f"check_build: {label}: {size(total)} unzipped, {size(buffer.tell())} zipped")
EOF
}
# Lambda's limit: a function and all its layers at most 250 MB unzipped (the exporter has both layers).
exporter_bytes="$(du -sb "$LAYER" "$ARCHIVE_LAYER" "$BUILD_DIR/build/LedgerExportFunction" | awk '{n += $1} END {print n}')"
info "LedgerExportFunction with both layers: $((exporter_bytes / 1000000)) MB unzipped (Lambda's limit: 250 MB)"
((exporter_bytes < 250 * 1024 * 1024)) || fail "LedgerExportFunction and its layers exceed Lambda's 250 MB unzipped"

sizes "WalletLayer" "$LAYER"
sizes "ArchiveLayer" "$ARCHIVE_LAYER"
for function in "${FUNCTIONS[@]}"; do
    sizes "$function" "$BUILD_DIR/build/$function"
done
info "OK"

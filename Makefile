# The usual targets. `make run` and `make test` install what is missing first (scripts/install.sh is idempotent).
BIN := .venv/bin
PY := $(BIN)/python
export AWS_DEFAULT_REGION ?= eu-west-1

.PHONY: install run test check lint format typecheck validate unit integration e2e build check-build bench soak clean

install:
	@bash scripts/install.sh

run: install
	$(BIN)/wallet local

# Everything CI runs: static checks, the template checks, and every test level, each timed (scripts/test.sh).
test: install
	@bash scripts/test.sh

check: lint typecheck validate

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format:
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck:
	$(BIN)/mypy

validate:
	$(BIN)/cfn-lint template.yaml
	$(BIN)/sam validate --lint --template template.yaml
	.local/checkov/bin/checkov --quiet --compact --skip-download --framework cloudformation -f template.yaml

unit:
	$(PY) -m pytest -q -p no:schemathesis -n 2 tests/unit tests/contract -m "not integration"

integration:
	$(PY) -m pytest -q -p no:schemathesis -n 2 tests/integration tests/contract -m integration

e2e:
	$(PY) -m pytest -q -p no:schemathesis -n 2 --dist loadfile tests/e2e

build:
	PYENV_VERSION=3.11.7:3.13.0 $(BIN)/sam build

check-build:
	bash scripts/check_build.sh

# Every sample event of events/ through SAM's own emulator (`sam local invoke`, checked against events/expected.json)
# and a `sam local start-api` round, offline on our own dockerd (scripts/invoke.sh: root; installs docker.io and
# debootstrap when missing, builds the Lambda base image once into .local/sam-invoke).
.PHONY: invoke
invoke: install
	@bash scripts/invoke.sh

bench: install
	$(PY) -m bench

# The deterministic simulation (tests/simulation/vopr.py) over many more seeds than CI's 2000, with progress; stops at
# the first failing seed and prints how to replay it. Override SEEDS, START (the first seed) and JOBS (processes).
soak:
	$(PY) -m tests.simulation.vopr --seeds $(or $(SEEDS),100000) --start $(or $(START),0) --jobs $(or $(JOBS),2) --every 5000

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache artifacts

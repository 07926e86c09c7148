#!/usr/bin/env bash
# `make test`: the static checks, then every test level in its own pytest run, each with its wall-clock time, and a
# summary table at the end. Every level runs even if an earlier one failed; the exit code is non-zero if any did.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

declare -a NAMES TIMES RESULTS SKIPS
failed=0

passed=0
failed_tests=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

stage() {  # stage NAME COMMAND...
    local name=$1; shift
    printf '\n\033[1m== %s ==\033[0m %s\n' "$name" "$*"
    local start=$SECONDS
    "$@" 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    # pytest's closing line of this level: "N failed, N passed, N deselected in S s" (the last such line).
    local counts
    counts=$(awk '/[0-9]+ (passed|failed|errors?)/ { line = $0 }
        END { n = split(line, w, /[ ,]+/); p = 0; f = 0
              for (i = 2; i <= n; i++) { if (w[i] ~ /^passed/) p = w[i-1]; if (w[i] ~ /^(failed|errors?)$/) f += w[i-1] }
              print p + 0, f + 0 }' "$log")
    passed=$((passed + ${counts% *}))
    failed_tests=$((failed_tests + ${counts#* }))
    # A stage that cannot run on this machine at all (`make invoke` without docker) ends with "[<what>] SKIPPED:
    # <reason>": shown as SKIPPED, neither passed nor failed.
    local skipped
    skipped=$(sed -n 's/^\[[a-z-]*\] SKIPPED: //p' "$log" | tail -1)
    if [[ $rc != 0 && -n $skipped ]]; then rc="skipped:$skipped"; SKIPS+=("$name: $skipped"); fi
    NAMES+=("$name"); TIMES+=("$((SECONDS - start))"); RESULTS+=("$rc")
    [[ $rc == 0 || $rc == skipped:* ]] || failed=1
    printf '\033[1m== %s: %s in %ss ==\033[0m\n' "$name" "$(result "$rc" "exit ")" "$((SECONDS - start))"
}

result() { case $1 in 0) echo ok ;; skipped:*) echo "SKIPPED (${1#skipped:})" ;; *) echo "FAILED (${2:-}$1)" ;; esac; }

stage lint make --no-print-directory lint
stage typecheck make --no-print-directory typecheck
stage validate make --no-print-directory validate
# Only the fuzz level uses schemathesis: its pytest plugin costs ~1.3 s of start-up per worker elsewhere.
NO_SCHEMATHESIS="-p no:schemathesis"
stage unit "$PY" -m pytest -q -p no:cacheprovider $NO_SCHEMATHESIS -n 2 tests/unit tests/contract -m "not integration"
# Two workers where the tests are independent (each worker starts its own DynamoDB Local on a free port): the
# simulation is pure CPU, the others wait on DynamoDB Local and the local stack; -n 2 keeps `make test` under 20
# minutes on 2 cores (stages 1,287 s in one process each on the 2026-12-04 machine, 943-971 s with it). e2e by file: a
# module's stack starts once.
stage simulation "$PY" -m pytest -q -p no:cacheprovider $NO_SCHEMATHESIS -n 2 tests/simulation
stage integration "$PY" -m pytest -q -p no:cacheprovider $NO_SCHEMATHESIS -n 2 tests/integration tests/contract -m integration
stage faults "$PY" -m pytest -q -p no:cacheprovider $NO_SCHEMATHESIS -n 2 tests/faults
stage fuzz "$PY" -m pytest -q -p no:cacheprovider tests/fuzz
stage e2e "$PY" -m pytest -q -p no:cacheprovider $NO_SCHEMATHESIS -n 2 --dist loadfile tests/e2e
stage invoke make --no-print-directory invoke
stage stress "$PY" -m pytest -q -p no:cacheprovider $NO_SCHEMATHESIS tests/stress

printf '\n%-12s %8s  %s\n' stage seconds result
total=0
for i in "${!NAMES[@]}"; do
    printf '%-12s %8s  %s\n' "${NAMES[$i]}" "${TIMES[$i]}" "$(result "${RESULTS[$i]}")"
    total=$((total + TIMES[i]))
done
printf '%-12s %8s\n' total "$total"
printf '\ntests: %d passed, %d failed\n' "$passed" "$failed_tests"
for skip in "${SKIPS[@]}"; do printf '\033[1;33mSKIPPED %s\033[0m\n' "$skip"; done
exit $failed

#!/usr/bin/env bash
# `make test`: the static checks, then every test level in its own pytest run, each with its wall-clock time, and a
# summary table at the end. Every level runs even if an earlier one failed; the exit code is non-zero if any did.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

declare -a NAMES TIMES RESULTS
failed=0

stage() {  # stage NAME COMMAND...
    local name=$1; shift
    printf '\n\033[1m== %s ==\033[0m %s\n' "$name" "$*"
    local start=$SECONDS
    "$@"
    local rc=$?
    # pytest exits 5 when a level collected no test: that is a missing level, a failure here.
    NAMES+=("$name"); TIMES+=("$((SECONDS - start))"); RESULTS+=("$rc")
    [[ $rc == 0 ]] || failed=1
    printf '\033[1m== %s: %s in %ss ==\033[0m\n' "$name" "$([[ $rc == 0 ]] && echo ok || echo "FAILED (exit $rc)")" "$((SECONDS - start))"
}

stage lint make --no-print-directory lint
stage typecheck make --no-print-directory typecheck
stage validate make --no-print-directory validate
stage unit "$PY" -m pytest -q -p no:cacheprovider -n 2 tests/unit tests/contract -m "not integration"
stage simulation "$PY" -m pytest -q -p no:cacheprovider tests/simulation
stage integration "$PY" -m pytest -q -p no:cacheprovider tests/integration tests/contract -m integration
stage faults "$PY" -m pytest -q -p no:cacheprovider tests/faults
stage fuzz "$PY" -m pytest -q -p no:cacheprovider tests/fuzz
stage e2e "$PY" -m pytest -q -p no:cacheprovider tests/e2e
stage stress "$PY" -m pytest -q -p no:cacheprovider tests/stress

printf '\n%-12s %8s  %s\n' stage seconds result
total=0
for i in "${!NAMES[@]}"; do
    printf '%-12s %8s  %s\n' "${NAMES[$i]}" "${TIMES[$i]}" "$([[ ${RESULTS[$i]} == 0 ]] && echo ok || echo "FAILED (${RESULTS[$i]})")"
    total=$((total + TIMES[i]))
done
printf '%-12s %8s\n' total "$total"
exit $failed

#!/usr/bin/env bash
# Which conformance test targets failed for each mutant of a cargo-mutants run
# (the runs use --no-fail-fast, so every selected target runs), and what the
# mutant cost:
#   conformance/mutants/killers.sh MUTANTS_OUT_DIR
# prints one line per mutant tested:
#   "<outcome> build <s> test <s> | <mutant> <- <failed targets, or none>"
# (needs jq for the outcome and the seconds; without it they read "?").
set -euo pipefail
[ $# -eq 1 ] && [ -d "$1/log" ] || { echo "usage: killers.sh MUTANTS_OUT_DIR" >&2; exit 2; }
json="$1/outcomes.json"
for log in "$1"/log/*.log; do
  name=$(sed -n 's/^\*\*\* \(.*\)$/\1/p' "$log" | head -1)
  case "$name" in "" | baseline*) continue ;; esac
  failed=$(grep -o 'to rerun pass `[^`]*`' "$log" | sed 's/.*-p eo-conformance //; s/`$//; s/^--test //' | sort -u | tr "\n" " " || true)
  cost="? build ? test ?"
  if command -v jq >/dev/null 2>&1 && [ -f "$json" ]; then
    cost=$(jq -r --arg n "$name" '.outcomes[] | select(.scenario.Mutant.name? == $n)
      | "\(.summary | ascii_downcase | sub("mutant$"; "")) build \([.phase_results[] | select(.phase == "Build") | .duration | floor] | add // 0) test \([.phase_results[] | select(.phase == "Test") | .duration | floor] | add // 0)"' "$json")
  fi
  echo "$cost | $name <- ${failed:-none}"
done

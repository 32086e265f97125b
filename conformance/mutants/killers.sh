#!/usr/bin/env bash
# Which conformance test targets failed for each mutant of a cargo-mutants run
# (the runs use --no-fail-fast, so every target runs):
#   conformance/mutants/killers.sh MUTANTS_OUT_DIR
# prints one line per mutant tested: "<mutant> <- target target …", or
# "<mutant> <- none" when every target passed (a missed or unviable mutant).
set -euo pipefail
[ $# -eq 1 ] && [ -d "$1/log" ] || { echo "usage: killers.sh MUTANTS_OUT_DIR" >&2; exit 2; }
for log in "$1"/log/*.log; do
  name=$(sed -n 's/^\*\*\* \(.*\)$/\1/p' "$log" | head -1)
  case "$name" in "" | baseline*) continue ;; esac
  failed=$(grep -o 'to rerun pass `[^`]*`' "$log" | sed 's/.*-p eo-conformance //; s/`$//; s/^--test //' | sort -u | tr '\n' ' ')
  echo "$name <- ${failed:-none}"
done

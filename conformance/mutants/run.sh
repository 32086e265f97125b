#!/usr/bin/env bash
# Issue 12 §4: mutation testing of the implementation's protocol cores with the
# conformance tests as the test command (cargo-mutants; not part of CI).
#
#   conformance/mutants/run.sh ack-retry               # every ack-retry mutant
#   conformance/mutants/run.sh ack-retry --file impl/src/ack_retry/receiver.rs
#   conformance/mutants/run.sh ack-retry --re 'sender.rs:4[0-9][0-9]:'
#   conformance/mutants/run.sh ack-retry --shard 0/16  # every 16th mutant (round-robin)
#   conformance/mutants/run.sh two-phase-commit        # a sample: shard 0 of 2 (184 of 368)
#   conformance/mutants/run.sh summary                 # kill rates from the results, no run
#
# Each run mutates the worktree in place (cargo-mutants restores every file after
# each mutant), so it refuses to start while impl/ has uncommitted changes: a
# tree left mutated by a killed run then shows in `git diff`. Outcomes merge into
# conformance/mutants/results/<suite>/outcomes.txt, one line per mutant
# ("caught|missed|timeout|unviable <mutant>"; a re-run mutant's line is
# replaced). results/<suite>/equivalent.txt lists the surviving mutants judged
# equivalent ("<mutant> # why"); the kill rate is over the others:
#   (caught + timeout) / (caught + timeout + missed − equivalent).
# Exit status: 0 after a run (mutants missed or not) or a summary, 2 on a usage
# error or a mutated impl/, cargo-mutants' own status when it tested nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."

usage() {
  sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# The conformance tests that exercise each suite's core. They are chosen to kill
# fast: every other conformance test drives the other protocol or the CLI.
ACK_RETRY_TESTS=(--lib --test=drive_ack_retry --test=abstraction_ack_retry
  --test=validate_sim --test=validate_tamper --test=mutants_ack_retry)
TWO_PC_TESTS=(--test=drive_two_phase_commit --test=abstraction_two_phase_commit)
# The 2PC sample: shard 0 of TWO_PC_SHARDS, round-robin over cargo-mutants'
# listing order (deterministic for a given source tree).
TWO_PC_SHARDS=2

# The same profile overrides as .cargo/mutants.toml, for the baseline run.
CONFIG=(--config=profile.test.package.eo-impl.opt-level=1 --config=profile.test.package.eo-impl.debug=0
  --config=profile.test.package.eo-conformance.opt-level=1 --config=profile.test.package.eo-conformance.debug=0)
# Per mutant: the selected tests take ~20 s unmutated at opt-level 1 on the
# loaded machine (the checker 10 s, the drive 6 s, the simulator 4 s); a mutant
# that makes them loop is cut at this many seconds. A build on the loaded
# shared machine took up to 10 minutes.
TEST_TIMEOUT_S=90
BUILD_TIMEOUT_S=1200

results_dir() { echo "conformance/mutants/results/$1"; }

summary() {
  local suite=$1 dir
  dir=$(results_dir "$suite")
  [ -f "$dir/outcomes.txt" ] || { echo "$suite: no outcomes yet"; return 0; }
  awk -v suite="$suite" '
    FNR == NR { sub(/ #.*/, ""); if ($0 != "") eq[$0] = 1; next }
    {
      outcome = $1; name = substr($0, length($1) + 2)
      n[outcome]++
      if (outcome == "missed" && (name in eq)) equiv++
    }
    END {
      caught = n["caught"] + 0; missed = n["missed"] + 0
      timeout = n["timeout"] + 0; unviable = n["unviable"] + 0
      real = caught + timeout + missed - equiv
      printf "%s: %d mutants run: %d caught, %d timeout, %d missed (%d equivalent), %d unviable\n",
        suite, caught + timeout + missed + unviable, caught, timeout, missed, equiv, unviable
      if (real > 0)
        printf "%s: kill rate over non-equivalent mutants %.1f%% (%d of %d)\n",
          suite, 100 * (caught + timeout) / real, caught + timeout, real
    }' <(cat "$dir/equivalent.txt" 2>/dev/null || true) "$dir/outcomes.txt"
}

merge() {
  local suite=$1 out=$2 dir tmp
  dir=$(results_dir "$suite")
  mkdir -p "$dir"
  tmp=$(mktemp)
  for outcome in caught missed timeout unviable; do
    [ -f "$out/$outcome.txt" ] && sed "s/^/$outcome /" "$out/$outcome.txt"
  done >"$tmp"
  touch "$dir/outcomes.txt"
  # Keep the old lines of mutants this run did not test, then add this run's.
  awk 'FNR == NR { seen[substr($0, length($1) + 2)] = 1; next }
       !(substr($0, length($1) + 2) in seen)' "$tmp" "$dir/outcomes.txt" >"$tmp.old"
  sort -k2 "$tmp.old" "$tmp" >"$dir/outcomes.txt"
  rm -f "$tmp" "$tmp.old"
}

[ $# -ge 1 ] || usage
suite=$1
shift
case "$suite" in
  ack-retry | two-phase-commit) ;;
  summary)
    [ $# -eq 0 ] || usage
    summary ack-retry
    summary two-phase-commit
    exit 0
    ;;
  -h | --help) usage ;;
  *) echo "run.sh: unknown suite '$suite'" >&2; usage ;;
esac

filter=()
while [ $# -gt 0 ]; do
  case "$1" in
    --file | --re | --shard)
      [ $# -ge 2 ] || usage
      filter+=("$1" "$2")
      shift 2
      ;;
    *) echo "run.sh: unknown argument '$1'" >&2; usage ;;
  esac
done

if ! git diff --quiet -- impl/; then
  echo "run.sh: impl/ has uncommitted changes; commit or stash them first (mutants run in place)" >&2
  exit 2
fi

if [ "$suite" = ack-retry ]; then
  files=(--file 'impl/src/ack_retry/*.rs')
  tests=("${ACK_RETRY_TESTS[@]}")
  sample=()
else
  files=(--file 'impl/src/two_phase_commit/*.rs')
  tests=("${TWO_PC_TESTS[@]}")
  sample=(--shard "0/$TWO_PC_SHARDS" --sharding round-robin)
fi
# --file replaces the suite's files; --re and --shard narrow them.
for f in "${filter[@]}"; do [ "$f" = --file ] && files=(); done
for f in "${filter[@]}"; do [ "$f" = --shard ] && sample=(--sharding round-robin); done

# The baseline: the selected tests pass on the unmutated tree. cargo-mutants'
# own baseline (27.1) builds the mutated package's targets instead of the test
# package's, so it is skipped and the timeouts are set here.
cargo test -p eo-conformance "${CONFIG[@]}" "${tests[@]}" --no-fail-fast >&2

out=$(mktemp -d)
args=(--in-place --workspace --no-shuffle --baseline skip --timeout "$TEST_TIMEOUT_S"
  --build-timeout "$BUILD_TIMEOUT_S" --output "$out" "${files[@]}" "${filter[@]}" "${sample[@]}")
# The test targets go to `cargo test` (the build before it builds every target
# of eo-conformance: cargo-mutants gives the build no test arguments);
# --no-fail-fast runs every target, so each mutant's log tells
# which of them failed (see killers.sh).
for t in "${tests[@]}"; do args+=(--cargo-test-arg="$t"); done
args+=(--cargo-test-arg=--no-fail-fast)
echo "run.sh: cargo mutants ${args[*]}" >&2
set +e
cargo mutants "${args[@]}"
status=$?
set -e
# 0: all caught; 2: some missed; 3: some timed out. An interrupted run still
# records the mutants it finished.
if [ ! -f "$out/mutants.out/outcomes.json" ]; then
  echo "run.sh: cargo mutants failed (status $status); see $out/mutants.out" >&2
  exit "$status"
fi
case "$status" in
  0 | 2 | 3) ;;
  *) echo "run.sh: cargo mutants stopped (status $status); recording what it finished" >&2 ;;
esac
merge "$suite" "$out/mutants.out"
conformance/mutants/killers.sh "$out/mutants.out" >>"$(results_dir "$suite")/killers.txt"
summary "$suite"
echo "run.sh: cargo-mutants' own output is in $out/mutants.out" >&2

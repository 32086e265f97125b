#!/usr/bin/env bash
# Runs every test on a fresh Debian/Ubuntu machine with a Rust toolchain:
# installs what the tests need beyond Rust (headless Chromium and its driver,
# for the Explorer's browser test) when it is missing, then runs
# `cargo test --workspace` with any arguments given.
#
#   scripts/test.sh                 # everything
#   scripts/test.sh -- --nocapture  # arguments go to cargo test
#
# The browser test fails (it does not skip) when CI=true and Chromium is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=()
command -v chromium >/dev/null 2>&1 || packages+=(chromium)
command -v chromedriver >/dev/null 2>&1 || packages+=(chromium-driver)
# Emoji in Stateright's page read as boxes in screenshots without a colour font.
[ -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || packages+=(fonts-noto-color-emoji)
if [ "${#packages[@]}" -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "scripts/test.sh: installing ${packages[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}"
  else
    echo "scripts/test.sh: cannot install ${packages[*]} (no apt-get); the browser test needs them" >&2
  fi
fi

cargo --version
cargo test --workspace "$@"

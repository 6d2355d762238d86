#!/usr/bin/env bash
# Start a local regtest network to try lanes by hand: bitcoind plus three funded lanesd nodes (alice, bob,
# carol) with alice->bob and bob->carol channels, and a payment alice->carol through bob to prove the route.
# It prints that payment, how to drive each node with lanes-cli and how to mine, then runs until Ctrl-C.
# Any failing step exits non-zero, naming the step.
#
#   regtest/run.sh                      # interactive
#   regtest/run.sh --exit-after-setup   # set up, print, stop (a smoke test)
#   LANES_KEEP_TMP=1 regtest/run.sh     # keep the data directory afterwards
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
cargo build --workspace --bins
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
exec "${target_dir:-$repo/target}/debug/lanes-regtest" "$@"

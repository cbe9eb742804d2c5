#!/bin/bash
# tests/capi/rust_consumer.sh <install prefix> <cargo> <crate dir> <work dir> <logits.npy>
# Builds the Rust consumer (offline, no crates) against the installed libsoftmax.so and runs
# it on the real logits. Exit 77 (CTest skip) when cargo or the logits are missing.
set -euo pipefail
prefix=$1 cargo=$2 src=$3 work=$4 logits=$5
if [[ ! -x $cargo ]]; then echo "SKIP: cargo not found"; exit 77; fi
if [[ ! -f $logits ]]; then echo "SKIP: $logits not found"; exit 77; fi
lib=$(dirname "$(find "$prefix" -name 'libsoftmax.so' | head -n1)")
# Build a copy, so cargo's Cargo.lock and target/ stay out of the source tree.
mkdir -p "$work/crate"
cp -r "$src/Cargo.toml" "$src/src" "$work/crate/"
export CARGO_TARGET_DIR=$work/target RUSTFLAGS="-L native=$lib -C link-arg=-Wl,-rpath,$lib"
"$cargo" build --offline --quiet --manifest-path "$work/crate/Cargo.toml"
"$work/target/debug/softmax_consumer" "$logits"

#!/usr/bin/env bash
# Fuzz smoke for CI (`stage "fuzz smoke" bash fuzz/smoke.sh` in .ci/run): builds every
# cargo-fuzz target and runs each one for a short while on its seed corpus
# (fuzz/corpus/<target>/, read only; new inputs go to a temporary directory).
#
# The last line is `fuzz: N passed, M failed` (N = targets that ran clean). A crash or a
# failed invariant leaves its input in fuzz/artifacts/<target>/ and shows how to replay it.
#
# FUZZ_SECONDS (default 10) is each target's run time; FUZZ_TARGETS (default: all, as
# `cargo fuzz list` gives them) the space-separated targets to run.
#
# Built as docs/fuzzing.md says: release, with debug assertions (overflow checks: a
# `free_space` that underflows panics instead of wrapping), without AddressSanitizer (the
# decoders are safe Rust; ASan would triple the build time and cut exec/s by 3-5).
set -uo pipefail

cd "$(dirname "$0")"
# The fuzz crate's own target dir, whatever the caller set for the root crate.
export CARGO_TARGET_DIR=$PWD/target
SECONDS_PER_TARGET=${FUZZ_SECONDS:-10}
BUILD_FLAGS=(--release --debug-assertions --sanitizer none)

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "installing the nightly toolchain"
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

targets=${FUZZ_TARGETS:-$(cargo +nightly fuzz list)}
count=$(echo $targets | wc -w)
echo "building $count targets: cargo +nightly fuzz build ${BUILD_FLAGS[*]}"
if ! cargo +nightly fuzz build "${BUILD_FLAGS[@]}"; then
    echo "fuzz: 0 passed, $count failed"
    exit 1
fi

triple=$(rustc +nightly -vV | sed -n 's/^host: //p')
bin_dir=target/$triple/release
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
for target in $targets; do
    mkdir -p "$work/$target" "artifacts/$target" "corpus/$target"
    log=$work/$target.log
    status=0
    "$bin_dir/$target" "$work/$target" "corpus/$target" \
        -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -timeout=10 \
        -artifact_prefix="artifacts/$target/" -print_final_stats=1 >"$log" 2>&1 || status=$?
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1)
    if [ "$status" = 0 ] && [ -n "$done_line" ]; then
        passed=$((passed + 1))
        echo "fuzz smoke: $target ok: $(echo "$done_line" | sed -E 's/^#([0-9]+)[[:space:]]+DONE[[:space:]]+/\1 runs, /')"
    else
        failed=$((failed + 1))
        echo "fuzz smoke: $target FAILED (exit $status)"
        grep -E 'panicked at|^(thread|Reply|ReplyAndClose|StartTls|auth_failed|greeting)|SUMMARY|Test unit written|^Base64' "$log" | head -20
        echo "  replay: cd fuzz && $bin_dir/$target artifacts/$target/<file>"
    fi
done

echo "fuzz: $passed passed, $failed failed"
[ "$failed" = 0 ]

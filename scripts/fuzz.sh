#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser of outside input with libFuzzer (FUZZ_SECONDS per target, default 60),
# then the route fuzzer for ROSTER_FUZZ_SECONDS (default 600). New crashes are written to Tests/fuzz-corpus/TARGET/
# as crash-* files: `swift test` replays every file there, so each becomes a regression test.
set -uo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-60}"
# A separate build folder: the instrumented objects must not mix with the normal ones.
swift build -c debug --product roster-fuzz --scratch-path .build/fuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING 2>&1 | grep -E "error|warning: unre|Compiling roster-fuzz|Build" || true
bin=.build/fuzz/debug/roster-fuzz
[ -x "$bin" ] || { echo "fuzz: the instrumented build failed"; exit 1; }
status=0
for target in csv fastcgi form json multipart selection xml; do
  work=".build/fuzz-corpus/$target"
  mkdir -p "$work"
  log=".build/fuzz-$target.log"
  # The Swift runtime's own crash reporter would stall under libFuzzer: libFuzzer reports crashes itself.
  SWIFT_BACKTRACE=enable=no ROSTER_FUZZ_TARGET="$target" "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
    -artifact_prefix="Tests/fuzz-corpus/$target/crash-" "$work" "Tests/fuzz-corpus/$target" >"$log" 2>&1
  rc=$?
  runs=$(grep -oE "Done [0-9]+ runs" "$log" | grep -oE "[0-9]+" | tail -1)
  cov=$(grep -oE "cov: [0-9]+" "$log" | tail -1 | grep -oE "[0-9]+")
  if [ $rc -eq 0 ]; then
    echo "fuzz: $target: ${runs:-?} executions in ${seconds} s, coverage ${cov:-?} edges, no crash"
  else
    echo "fuzz: $target: CRASH (see $log; the input is in Tests/fuzz-corpus/$target/)"; status=1
  fi
done
# The route fuzzer, longer than in make test.
ROSTER_FUZZ_SECONDS="${ROSTER_FUZZ_SECONDS:-600}" swift test --disable-swift-testing --filter RouteFuzzTests 2>&1 | grep -E "route fuzzer|error:|Executed" || status=1
exit $status

#!/bin/sh
# Command-line tests: sh tests/test_cli.sh CLI PYTHON WORKDIR
# Good inputs give the right rate image; bad ones exit non-zero and leave no
# output file.
CLI=$1
PYTHON=$2
DIR=$3
HERE=$(dirname "$0")
pass=0
fail=0

ok() { pass=$((pass + 1)); }
ko() { fail=$((fail + 1)); echo "FAIL: $*"; }

rm -rf "$DIR" && mkdir -p "$DIR" || exit 1
"$PYTHON" "$HERE/cli_fixture.py" make "$DIR" || { echo "cannot make test data"; exit 1; }

for mode in utr cds mcds; do
    out="$DIR/rate_$mode.fits"
    if "$CLI" -s $mode -n 2 -r 5 "$DIR/l0_4d.fits" -o "$out" &&
        "$PYTHON" "$HERE/cli_fixture.py" check "$out" $mode; then ok; else ko "$mode 4-D"; fi
done
if "$CLI" -s utr -j 0 -t 1 "$DIR/l0_3d.fits" -o "$DIR/rate_3d.fits" &&
    "$PYTHON" "$HERE/cli_fixture.py" check "$DIR/rate_3d.fits" utr; then ok; else ko "3-D"; fi

# an existing output is kept without -f, replaced with -f
if "$CLI" -s cds "$DIR/l0_3d.fits" -o "$DIR/rate_3d.fits" 2>/dev/null; then
    ko "overwrote without -f"; else ok; fi
if "$CLI" -f -s cds "$DIR/l0_3d.fits" -o "$DIR/rate_3d.fits" &&
    "$PYTHON" "$HERE/cli_fixture.py" check "$DIR/rate_3d.fits" cds; then ok; else ko "--clobber"; fi

# every failure: non-zero exit, exactly one line "iris_readout: error: ...",
# no output (nor temporary) file
expect_failure_to() {  # name, output, then the CLI arguments
    name=$1
    out=$2
    shift 2
    if "$CLI" "$@" -o "$out" 2>"$DIR/stderr" >/dev/null; then
        ko "$name: exit status 0"
    elif [ "$out" != "$DIR/l0_3d.fits" ] && [ -e "$out" ] && [ ! -L "$out" ] &&
        [ "$name" != "${name#new:}" ]; then
        ko "$name: output file left behind"
    elif ls "$out".tmp* >/dev/null 2>&1; then
        ko "$name: temporary file left behind"
    elif [ "$(wc -l < "$DIR/stderr")" -ne 1 ]; then
        ko "$name: stderr is not one line: $(cat "$DIR/stderr")"
    elif ! grep -q '^iris_readout: error: ' "$DIR/stderr"; then
        ko "$name: message format: $(cat "$DIR/stderr")"
    else
        ok
    fi
}
expect_failure() { name=$1; shift; expect_failure_to "new:$name" "$DIR/bad.fits" "$@"; }
expect_failure "missing file" -s utr "$DIR/nonexistent.fits"
expect_failure "wrong dtype" -s utr "$DIR/l0_float.fits"
expect_failure "2-D input" -s utr "$DIR/l0_2d.fits"
expect_failure "bad mode" -s fowler "$DIR/l0_3d.fits"
expect_failure "no mode" "$DIR/l0_3d.fits"
expect_failure "Fowler N too large" -s mcds -n 4 "$DIR/l0_3d.fits"
expect_failure "bad number" -s utr -j abc "$DIR/l0_3d.fits"
expect_failure "-n overflow" -s mcds -n 99999999999999999999 "$DIR/l0_3d.fits"
expect_failure "-n trailing text" -s mcds -n 2x "$DIR/l0_3d.fits"
expect_failure "-n blank" -s mcds -n " 2" "$DIR/l0_3d.fits"
expect_failure "-n empty" -s mcds -n "" "$DIR/l0_3d.fits"
expect_failure "-n zero" -s mcds -n 0 "$DIR/l0_3d.fits"
expect_failure "-t negative" -s utr -t -1 "$DIR/l0_3d.fits"
expect_failure "-g overflow" -s utr -g 1e999 "$DIR/l0_3d.fits"
expect_failure "-r nan" -s utr -r nan "$DIR/l0_3d.fits"
expect_failure "-a range" -s utr -a 2 "$DIR/l0_3d.fits"
expect_failure "unknown option" -s utr -x 1 "$DIR/l0_3d.fits"
expect_failure "truncated file" -s utr "$DIR/l0_truncated.fits"
expect_failure "padded file" -s utr "$DIR/l0_padded.fits"
expect_failure "missing reference" -s utr --gain "$DIR/nonexistent.fits" "$DIR/l0_3d.fits"

# the output is never one of the inputs: same path, symbolic or hard link
cp "$DIR/l0_3d.fits" "$DIR/keep.fits"
sum_before=$(cksum < "$DIR/l0_3d.fits")
ln -sf l0_3d.fits "$DIR/link.fits"
ln -f "$DIR/l0_3d.fits" "$DIR/hard.fits"
expect_failure_to "same path" "$DIR/l0_3d.fits" -f -s utr "$DIR/l0_3d.fits"
expect_failure_to "same path, other spelling" "$DIR/./l0_3d.fits" -f -s utr "$DIR/l0_3d.fits"
expect_failure_to "symbolic link" "$DIR/link.fits" -f -s utr "$DIR/l0_3d.fits"
expect_failure_to "hard link" "$DIR/hard.fits" -f -s utr "$DIR/l0_3d.fits"
expect_failure_to "input through a link" "$DIR/l0_3d.fits" -f -s utr "$DIR/link.fits"
expect_failure_to "reference file" "$DIR/keep.fits" -f -s utr --gain "$DIR/keep.fits" "$DIR/l0_3d.fits"
if [ "$(cksum < "$DIR/l0_3d.fits")" = "$sum_before" ] && [ -L "$DIR/link.fits" ] &&
    cmp -s "$DIR/keep.fits" "$DIR/l0_3d.fits"; then ok; else ko "an input was changed"; fi

echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]

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

expect_failure() {  # name, then the CLI arguments (output is $DIR/bad.fits)
    name=$1
    shift
    if "$CLI" "$@" -o "$DIR/bad.fits" 2>"$DIR/stderr"; then
        ko "$name: exit status 0"
    elif [ -e "$DIR/bad.fits" ] || ls "$DIR"/bad.fits.tmp* >/dev/null 2>&1; then
        ko "$name: output file left behind"
    elif [ ! -s "$DIR/stderr" ]; then
        ko "$name: no message"
    else
        ok
    fi
}
expect_failure "missing file" -s utr "$DIR/nonexistent.fits"
expect_failure "wrong dtype" -s utr "$DIR/l0_float.fits"
expect_failure "2-D input" -s utr "$DIR/l0_2d.fits"
expect_failure "bad mode" -s fowler "$DIR/l0_3d.fits"
expect_failure "Fowler N too large" -s mcds -n 4 "$DIR/l0_3d.fits"
expect_failure "bad number" -s utr -j abc "$DIR/l0_3d.fits"

echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]

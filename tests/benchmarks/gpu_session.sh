#!/usr/bin/env bash
# The GPU measurements of the YOLO runner on a lent machine (the device tool), in few, full calls.
#
# The lent machine has PyTorch, numpy, matplotlib, typer, rich and PyYAML but no internet, so the rest
# of kb's needs travel as wheels in .whl/ (ignored by git, named in the call's `carry`). Run kb from
# the checkout there; its catalog and runs live in .kb/, which stays between calls while the machine
# is warm (30 s after a call), so send the next call promptly.
#
#   here:  bash tests/benchmarks/gpu_session.sh wheels        # once, where pip reaches PyPI (Python 3.12 wheels)
#   there: bash tests/benchmarks/gpu_session.sh bench [ARGS]  # bench_yolo.py table -> $OUT/bench_yolo.txt
#          bash tests/benchmarks/gpu_session.sh train 540     # kb reproduce yolo (default preset) for at most
#                                                             # 540 s, then Ctrl-C: a checkpoint; the next
#                                                             # `train` resumes it -> $OUT/train.log
#          bash tests/benchmarks/gpu_session.sh export [ID]   # a finished run (the newest) -> $OUT/<run id>.json
#
# `train` takes extra `kb reproduce` arguments after the seconds (e.g. --config paper --data ...).
# The copied tree has no .git: say which commit it is, or runs record none. A device call, composed here:
#   {"command": "export KB_GIT_COMMIT=<git rev-parse HEAD> KB_GIT_DIRTY=0; bash tests/benchmarks/gpu_session.sh
#    bench && bash tests/benchmarks/gpu_session.sh train 300", "carry": [".whl"], "timeout_s": 600}
# Then put $OUT's run file in papers/yolo/runs/ (kb sync loads it) and the numbers in runners/yolo/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."

# What kb needs beyond the machine's own packages, pinned to what CI installs.
WHEELS=(
    "sqlmodel==0.0.50" "SQLAlchemy==2.1.9" "pydantic==2.14.3" "pydantic-core==2.50.4" "annotated-types==0.8.0"
    "typing-inspection==0.4.5" "typing-extensions==4.16.0" "snowballstemmer==3.1.1" "croniter==7.0.0"
)
SITE=/tmp/kb-site
OUT=${OUT:-$PWD/.gpu-out}

install() {
    if [ ! -d .whl ]; then
        echo "gpu_session: no .whl/ here; run 'bash tests/benchmarks/gpu_session.sh wheels' where pip works and carry .whl" >&2
        exit 2
    fi
    [ -d "$SITE" ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" .whl/*.whl
    export PYTHONPATH="$SITE:$PWD" PYTHONUNBUFFERED=1 KB_HOME="$PWD/.kb" KB_PAPERS="$PWD/papers"
    mkdir -p "$OUT"
}

kb() { python3 -m kb.cli.main "$@"; }

last_yolo_run() {  # id of the newest yolo run with the given status, or nothing
    kb runs --runner yolo --status "$1" --json | python3 -c 'import json, sys; rows = json.load(sys.stdin); print(rows[0]["id"] if rows else "")'
}

case "${1:-}" in
wheels)
    python="${PYTHON_VERSION:-3.12}"
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$python" --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl "${WHEELS[@]}"
    ls .whl
    ;;
bench)
    install
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt" || true
    python3 tests/benchmarks/bench_yolo.py "${@:2}" 2>&1 | tee -a "$OUT/bench_yolo.txt"
    ;;
train)
    install
    seconds="${2:?train SECONDS [kb reproduce arguments]}"
    shift 2
    kb sync > /dev/null
    resume=$(last_yolo_run interrupted)
    if [ -n "$resume" ]; then
        echo "resuming $resume" | tee -a "$OUT/train.log"
        timeout -s INT -k 60 "$seconds" python3 -m kb.cli.main reproduce --resume "$resume" 2>&1 | tee -a "$OUT/train.log" || true
    else
        timeout -s INT -k 60 "$seconds" python3 -m kb.cli.main reproduce yolo "$@" 2>&1 | tee -a "$OUT/train.log" || true
    fi
    kb runs --runner yolo | tee -a "$OUT/train.log"
    ;;
export)
    install
    run="${2:-$(last_yolo_run succeeded)}"  # the newest succeeded run, unless one is named
    [ -n "$run" ] || { echo "gpu_session: no succeeded yolo run to export yet" >&2; exit 1; }
    kb runs export "$run" --out "$OUT"
    kb run show "$run" > "$OUT/$run.txt"
    ;;
*)
    sed -n '2,22p' "$0" >&2
    exit 2
    ;;
esac

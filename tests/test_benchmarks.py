"""The GPU benchmark script still runs (on CPU, tiny), so a session that gets a GPU can use it at once."""

import subprocess
import sys

from tests.conftest import ROOT


def test_bench_yolo_prints_every_mode_with_mfu():
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "benchmarks" / "bench_yolo.py"), "--device", "cpu", "--size", "64",
         "--batch", "4", "--steps", "2", "--arch", "fast", "--width", "0.125", "--peak-tflops", "1"],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {line[:30].strip(): line.split() for line in result.stdout.splitlines()}
    for mode in ("input pipeline only", "fp32 eager", "bf16+channels_last", "bf16+channels_last+compile"):
        assert mode in rows, result.stdout
    for mode in ("fp32 eager", "bf16+channels_last", "bf16+channels_last+compile"):
        images_per_s, gflop, tflops, mfu = rows[mode][-4:]
        assert float(images_per_s) > 0 and float(gflop) > 0 and mfu.endswith("%"), rows[mode]


def test_gpu_session_script_explains_itself_without_wheels(tmp_path):
    script = tmp_path / "tests" / "benchmarks" / "gpu_session.sh"
    script.parent.mkdir(parents=True)
    script.write_text((ROOT / "tests" / "benchmarks" / "gpu_session.sh").read_text())
    usage = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2 and "gpu_session.sh train 540" in usage.stderr
    bare = subprocess.run(["bash", str(script), "train", "10"], capture_output=True, text=True, timeout=60)
    assert bare.returncode == 2 and "no .whl/ here" in bare.stderr

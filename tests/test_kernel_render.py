"""The kernel tables at 80 columns, exact text, from stored real runs: lavapipe (no datasheet
peak: "n/a" of peak, never "100 %") and the NVIDIA H200 (datasheet peaks: percentages)."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console, Group

from vkdoctor.kernels.run import KernelRun
from vkdoctor.render.kernels import kernel_run_parts
from vkdoctor.report.io import load_report

ROOT = Path(__file__).resolve().parent.parent
LAVAPIPE = (
    ROOT / "tests" / "fixtures" / "kernels-lavapipe-tiny.json"
)  # kernels --size tiny --seed 7
H200 = ROOT / "reports" / "nvidia-h200-kernels.json"


def _render(path: Path) -> str:
    run = KernelRun.from_report(load_report(str(path)))
    assert run is not None
    console = Console(width=80, record=True, file=io.StringIO(), color_system=None)
    console.print(Group(*kernel_run_parts(run)))
    # Rich pads a wrapped line with one space; the comparison ignores trailing blanks only.
    return "\n".join(line.rstrip() for line in console.export_text().splitlines()) + "\n"


def test_cpu_driver_without_datasheet_peak_shows_na() -> None:
    assert (
        _render(LAVAPIPE)
        == """\
vkdoctor kernels · seed 7 · loader 1.3.239 · 0.4 s

Device 0: llvmpipe (LLVM 15.0.6, 256 bits) · cpu · Vulkan 1.3.230 · llvmpipe
Mesa 22.3.6 (LLVM 15.0.6)
  sizes: tiny, 1 warm-up + 2 timed (GPU timestamps)
  measured peak (best of this run): 10.1 GB/s · FP32 27.8 GFLOP/s · FP16 3.14
GFLOP/s
kernel           size  status   median  spread        figure  of peak
copy            1 MiB  ok       412 µs     17%     5.09 GB/s      n/a
copy-vec4       1 MiB  ok       216 µs    5.5%     9.71 GB/s      n/a
copy-grid       1 MiB  ok       207 µs    4.5%     10.1 GB/s      n/a
saxpy             64K  ok       117 µs     24%     6.71 GB/s      n/a
reduce          64.0K  ok      81.3 µs     17%     3.22 GB/s      n/a
fma-fp32      512 thr  ok      75.4 µs    7.8%  27.8 GFLOP/s      n/a
fma-fp16      512 thr  ok       667 µs    5.6%  3.14 GFLOP/s      n/a
sgemm            128³  ok       965 µs     11%  4.35 GFLOP/s      n/a
conv2d     1×9×7×8→64  ok       242 µs    2.6%  2.40 GFLOP/s      n/a
"""
    )


def test_datasheet_peak_shows_percentages() -> None:
    assert (
        _render(H200)
        == """\
vkdoctor kernels · seed 81022077 · loader 1.3.239 · 33.5 s

Device 0: NVIDIA H200 · discrete-gpu · Vulkan 1.4.312 · NVIDIA 580.159.04
  sizes: auto, 2 warm-up + 10 timed (GPU timestamps)
  datasheet peak of the NVIDIA H200 SXM: 4.80 TB/s · FP32 67.0 TFLOP/s · FP16
134 TFLOP/s · FP16 tensor 990 TFLOP/s
kernel                    size  status   median  spread        figure  of peak
copy                     1 GiB  ok       507 µs    0.6%     4.24 TB/s      88%
copy-vec4                1 GiB  ok       503 µs    0.3%     4.27 TB/s      89%
copy-grid                1 GiB  ok       540 µs    0.9%     3.97 TB/s      83%
saxpy                      64M  ok       186 µs    1.5%     4.33 TB/s      90%
reduce                    256M  ok       235 µs    1.4%     4.57 TB/s      95%
fma-fp32                1M thr  ok      35.0 ms    0.0%  62.9 TFLOP/s      94%
fma-fp16                1M thr  ok      33.9 ms    0.0%  64.8 TFLOP/s      48%
sgemm                    8192³  ok      24.7 ms    0.5%  44.5 TFLOP/s      66%
conv2d         128×56×56×64→64  ok       870 µs    0.8%  34.0 TFLOP/s      51%
hgemm-coopmat            8192³  ok      3.86 ms    2.1%   285 TFLOP/s      29%
"""
    )

"""Problem sizes, tiles and presets of the kernel suite (tiny / small / large / per device).

Headless: no rich/textual.
"""

from __future__ import annotations

from dataclasses import field, replace
from typing import Any

from vkdoctor.record import frozen
from vkdoctor.vulkan.compute import DeviceInfo


@frozen
class SgemmTiles:
    """SGEMM tiling (specialization constants 1-8); the workgroup follows from them."""

    bm: int = 128
    bn: int = 128
    bk: int = 16
    tm: int = 8
    tn: int = 8
    pad: int = 4  # floats of padding per k-row of the transposed A tile (constant 6)
    buffers: int = 1  # shared-memory copies of the tiles: 1 for sgemm.comp, 2 for conv2d.comp
    # sgemm.comp only.  Thread blocks per 32 invocations (constant 7): 0 numbers them row by
    # row, R > 0 gives each 32 a rectangle of R x 32/R blocks (see sgemm.comp).
    warp_rows: int = 0
    group_m: int = 0  # row tiles per column sweep of the workgroup order (constant 8); 0: grid

    @property
    def workgroup_size(self) -> int:
        return (self.bm // self.tm) * (self.bn // self.tn)

    @property
    def shared_bytes(self) -> int:
        return 4 * self.buffers * self.bk * ((self.bm + self.pad) + self.bn)

    def problem(self, info: DeviceInfo) -> str | None:
        """Why these tiles cannot run on ``info``, or None."""
        if self.tm % 4 or self.tn % 4 or self.bk % 4 or self.pad % 4:
            return "tm, tn, bk and pad must be multiples of 4"
        if self.bm % self.tm or self.bn % self.tn:
            return "bm and bn must be multiples of tm and tn"
        if self.workgroup_size > info.limits.max_workgroup_invocations:
            return f"workgroup of {self.workgroup_size} exceeds maxComputeWorkGroupInvocations"
        if self.shared_bytes > info.limits.max_compute_shared_memory:
            return f"{self.shared_bytes} bytes of shared memory exceed maxComputeSharedMemorySize"
        if self.warp_rows:
            cols = 32 // self.warp_rows if 32 % self.warp_rows == 0 else 0
            rows, across = self.bm // self.tm, self.bn // self.tn
            if not cols or rows % self.warp_rows or across % cols:
                return (
                    f"warp_rows {self.warp_rows} must divide 32 and {rows} block rows, and "
                    f"32/warp_rows the {across} block columns"
                )
        if self.group_m < 0:
            return "group_m must be 0 or more"
        return None

    def specialization(self) -> dict[int, int]:
        return {
            0: self.workgroup_size,
            1: self.bm,
            2: self.bn,
            3: self.bk,
            4: self.tm,
            5: self.tn,
            6: self.pad,
        }

    def sgemm_specialization(self) -> dict[int, int]:
        """sgemm.comp's constants: the tiles plus its thread layout and workgroup order."""
        return {**self.specialization(), 7: self.warp_rows, 8: self.group_m}

    def to_dict(self) -> dict[str, int]:
        return {
            "bm": self.bm,
            "bn": self.bn,
            "bk": self.bk,
            "tm": self.tm,
            "tn": self.tn,
            "pad": self.pad,
            "warp_rows": self.warp_rows,
            "group_m": self.group_m,
        }


@frozen
class ConvShape:
    """One convolution layer: NHWC input of ``batch`` images, a square ``2r+1`` filter, stride 1,
    zero padding ``r`` (output the size of the input)."""

    batch: int
    height: int
    width: int
    cin: int
    cout: int
    radius: int = 1
    name: str = ""

    @property
    def taps(self) -> int:
        return 2 * self.radius + 1

    @property
    def pixels(self) -> int:
        return self.batch * self.height * self.width

    @property
    def k(self) -> int:
        return self.taps * self.taps * self.cin

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "batch": self.batch,
            "height": self.height,
            "width": self.width,
            "cin": self.cin,
            "cout": self.cout,
            "kernel": self.taps,
        }


# Real layers: the 3x3 convolutions of ResNet-50's stages 2-4 (He et al. 2015, table 1) at
# training batch 128.  The suite times conv2_x by default; bench_kernels.py --conv-shape picks
# another.  The Vulkan kernel is NHWC; cuDNN is timed in both layouts.
RESNET50 = {
    "resnet50-conv2x": ConvShape(128, 56, 56, 64, 64, 1, "resnet50-conv2x"),
    "resnet50-conv3x": ConvShape(128, 28, 28, 128, 128, 1, "resnet50-conv3x"),
    "resnet50-conv4x": ConvShape(128, 14, 14, 256, 256, 1, "resnet50-conv4x"),
}
# Tiles measured best per layer on an NVIDIA H200 (driver 580).
CONV_TILES = {
    "resnet50-conv2x": SgemmTiles(128, 64, 8, 8, 8, 4, 2),
    "resnet50-conv3x": SgemmTiles(128, 128, 16, 8, 8, 4, 2),
    "resnet50-conv4x": SgemmTiles(128, 128, 16, 8, 8, 4, 2),
}


# Spin-up of GPUs before each timed kernel (SuiteSizes.spin_up_s).  NVIDIA's driver, for one,
# lowers the SM clock under light load (nvidia-smi: clocks event reason "GPU idle") and raises
# it again only under sustained load.  The suite's host-side phases (random inputs, 1 GiB
# staged transfers, verification) leave the GPU nearly idle for seconds, so on an H200 (driver
# 580) the SM clock had fallen from 1980 to 345 MHz by the second or third kernel and the copy
# kernels measured 1.7 TB/s instead of 4.3; a dozen 0.5 ms warm-up dispatches do not bring it
# back.  Measured there, back-to-back copy or FMA dispatches restore the full clock after
# 0.25-0.35 s; 0.5 s leaves a margin.  Fresh contexts hid all this: creating a device boosts
# the clock for about 3 s, which is why standalone measurements looked fine.
SPIN_UP_S = 0.5


@frozen
class SuiteSizes:
    """Problem sizes and repetition counts; ``for_device`` picks them from the device."""

    workgroup_size: int = 256
    bandwidth_bytes: int = 16 << 20  # per buffer; bytes moved are twice this
    grid_workgroups: int = 64  # for the grid-stride kernels
    saxpy_elements: int = 1 << 22
    reduce_elements: int = 1 << 22
    reduce_variant: str = "auto"  # auto | subgroup | shared-memory
    fma_workgroups: int = 16
    fma_iters: int = 32  # loop trips; each is 8 step pairs on 4 vec4 chains
    sgemm_n: int = 256  # M = N = K
    # The discrete-GPU thread layout and workgroup order, so CPU runs exercise them too.
    sgemm_tiles: SgemmTiles = field(
        default_factory=lambda: SgemmTiles(64, 64, 16, 4, 4, warp_rows=4, group_m=2)
    )
    # Not multiples of the tile: the partial last row tile runs.  lavapipe: about 21 MFLOP.
    conv: ConvShape = field(default_factory=lambda: ConvShape(2, 13, 11, 16, 64, 1, "small"))
    conv_tiles: SgemmTiles = field(default_factory=lambda: SgemmTiles(64, 64, 16, 4, 4, 4, 2))
    warmup: int = 1
    repetitions: int = 3
    # Seconds of back-to-back dispatches of the kernel itself before it is timed (0: none).
    # GPUs drop their clocks within a second or two of light load and take far longer than a
    # few dispatches to raise them again; see _Job.spin_up.
    spin_up_s: float = 0.0
    verify_limit: int = 1 << 20  # above this many outputs, SGEMM/conv verify sampled rows

    @classmethod
    def small(cls) -> SuiteSizes:
        """CPU drivers (lavapipe): the whole suite in a few seconds."""
        return cls()

    @classmethod
    def tiny(cls) -> SuiteSizes:
        """For tests: every kernel in well under a second on lavapipe."""
        return cls(
            bandwidth_bytes=1 << 20,
            grid_workgroups=8,
            saxpy_elements=1 << 16,
            reduce_elements=(1 << 16) + 12,  # not a multiple of the grid: tail paths run
            fma_workgroups=2,
            fma_iters=8,
            sgemm_n=128,
            conv=ConvShape(1, 9, 7, 8, 64, 1, "tiny"),
            conv_tiles=SgemmTiles(64, 64, 8, 4, 4, 4, 2),
            warmup=1,
            repetitions=2,
        )

    @classmethod
    def large(cls, info: DeviceInfo) -> SuiteSizes:
        """Discrete GPUs: fill the chip and exceed every cache (1 GiB buffers, SGEMM 8192)."""
        budget = info.device_local_bytes or (8 << 30)
        big = budget >= (16 << 30)
        bw = min(1 << 30, _pow2_floor(info.limits.max_storage_buffer_range), budget // 8)
        if info.limits.max_memory_allocation_size:
            bw = min(bw, _pow2_floor(info.limits.max_memory_allocation_size))
        return cls(
            bandwidth_bytes=bw,
            grid_workgroups=4096,
            saxpy_elements=min(1 << 26, bw // 4),
            reduce_elements=bw // 4,
            # About 4 full waves of 256-invocation workgroups on a 132-SM chip: the partial
            # last wave costs a few percent at most.
            fma_workgroups=4096,
            fma_iters=4096,
            sgemm_n=8192 if big else 4096,
            # The fastest of two sweeps on an NVIDIA H200 (driver 580), 8192^3, TFLOP/s
            # (BMxBNxBK, TMxTN per invocation; benchmarks/RESULTS.md, issue 17 third session):
            # 128x128x16 8x8 with a 4x8 block per 32 invocations and GROUP_M 8: 46.0 (grid
            # order 45.9-46.0; 8x4 blocks 45.9; row by row, the old layout, 38.0); 64x128x16 8x8
            # 43.4-45.6; 128x256x8 8x16 row by row (the old default) 44.5, 4x8 44.8;
            # 128x256x16 8x16 8x4 45.0; 128x64x16 8x8 44.5; 128x128x32 or x8 8x8 41-45 (pad 4)
            # and 40-41; 128x256 or 256x128 with 8x8 (512 invocations) 35-41; 8x4 and 4x8 per
            # invocation 38-40.  Shared-memory double buffering (28-30) and an untransposed A
            # tile (37-42) lost again.  Other GPUs take the same tiles when their limits allow
            # (SgemmTiles.problem).
            sgemm_tiles=SgemmTiles(128, 128, 16, 8, 8, warp_rows=4, group_m=8),
            conv=RESNET50["resnet50-conv2x"],
            conv_tiles=CONV_TILES["resnet50-conv2x"],
            warmup=2,
            repetitions=10,
            spin_up_s=SPIN_UP_S,
        )

    @classmethod
    def for_device(cls, info: DeviceInfo) -> SuiteSizes:
        if info.is_cpu:
            return cls.small()
        if info.type == "discrete-gpu":
            return cls.large(info)
        # Integrated/virtual GPUs share system memory: a quarter of the discrete sizes.
        large = cls.large(info)
        return replace(
            large,
            bandwidth_bytes=large.bandwidth_bytes // 4,
            saxpy_elements=large.saxpy_elements // 4,
            reduce_elements=large.reduce_elements // 4,
            fma_workgroups=512,
            fma_iters=2048,
            sgemm_n=2048,
            conv=replace(large.conv, batch=32),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "workgroup_size": self.workgroup_size,
            "bandwidth_bytes": self.bandwidth_bytes,
            "grid_workgroups": self.grid_workgroups,
            "saxpy_elements": self.saxpy_elements,
            "reduce_elements": self.reduce_elements,
            "reduce_variant": self.reduce_variant,
            "fma_workgroups": self.fma_workgroups,
            "fma_iters": self.fma_iters,
            "sgemm_n": self.sgemm_n,
            "sgemm_tiles": self.sgemm_tiles.to_dict(),
            "conv": self.conv.to_dict(),
            "conv_tiles": self.conv_tiles.to_dict(),
            "warmup": self.warmup,
            "repetitions": self.repetitions,
            "spin_up_s": self.spin_up_s,
        }


def _pow2_floor(n: int) -> int:
    return 1 << (max(n, 1).bit_length() - 1)

"""Buffers lent across the kernels of one run, and the per-kernel job that uploads inputs,
spins the clocks up and times the dispatches.

Headless: no rich/textual.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import field
from typing import Any

import numpy as np

from vkdoctor.kernels import spirv
from vkdoctor.kernels.sizes import SuiteSizes
from vkdoctor.kernels.verify import Tamper, _expect
from vkdoctor.record import mutable
from vkdoctor.vulkan.compute import ComputeContext, DispatchTiming


class BufferPool:
    """Storage buffers reused by the kernels of one suite run, which saves allocating (and the
    driver clearing) gigabyte buffers again for every kernel.

    It does not change the bandwidth figures.  A drop of copy-vec4 from 4.27 to 1.67 TB/s on an
    NVIDIA H200 once a few 1 GiB buffers had been freed and reallocated was first blamed on
    the allocations; fresh, reused and dedicated allocations all measured the same, and the
    cause was the SM clock falling while the GPU idled between kernels (see SPIN_UP_S).
    """

    def __init__(self, ctx: ComputeContext) -> None:
        self.ctx = ctx
        self._free: dict[int, list[Any]] = {}

    def take(self, nbytes: int) -> Any:
        free = self._free.get(nbytes)
        while free:
            buf = free.pop()
            if buf.alive:
                return buf
        return self.ctx.buffer(nbytes)

    def give(self, buf: Any) -> None:
        if buf.alive and not self.ctx._work_may_be_running:
            self._free.setdefault(buf.nbytes, []).append(buf)
        else:
            buf.destroy()

    def close(self) -> None:
        for buffers in self._free.values():
            for buf in buffers:
                buf.destroy()
        self._free.clear()


@mutable
class _Job:
    ctx: ComputeContext
    sizes: SuiteSizes
    rng: np.random.Generator
    tamper: Tamper | None
    pool: BufferPool | None = None
    buffers: list[Any] = field(default_factory=list)

    def _take(self, nbytes: int) -> Any:
        buf = self.pool.take(nbytes) if self.pool is not None else self.ctx.buffer(nbytes)
        self.buffers.append(buf)
        return buf

    def upload(self, array: np.ndarray) -> Any:
        buf = self._take(array.nbytes)
        buf.write(array)
        return buf

    def output(self, nbytes: int) -> Any:
        buf = self._take(nbytes)
        # A NaN/odd pattern, so an output the kernel never writes cannot match by luck.
        self.ctx.fill(buf, 0x7FC0DEAD)
        return buf

    def run(
        self,
        shader: str,
        buffers: Sequence[Any],
        groups: tuple[int, int, int],
        push: bytes,
        specialization: Mapping[int, int],
    ) -> DispatchTiming:
        pipe = self.ctx.pipeline(
            spirv.load_spirv(shader),
            bindings=len(buffers),
            push_constant_size=len(push),
            specialization=specialization,
            name=shader,
        )
        if self.sizes.spin_up_s > 0:
            self.spin_up(pipe, buffers, groups, push, self.sizes.spin_up_s)
        return self.ctx.dispatch(
            pipe,
            buffers,
            groups,
            push,
            warmup=self.sizes.warmup,
            repeat=self.sizes.repetitions,
        )

    def spin_up(
        self,
        pipe: Any,
        buffers: Sequence[Any],
        groups: tuple[int, int, int],
        push: bytes,
        seconds: float,
    ) -> None:
        """Keep the device busy with this very dispatch for ``seconds`` of wall time, so that
        the timed run finds the clocks the driver gives sustained load (see SPIN_UP_S).

        Submits of about 50 ms each, sized from one probe dispatch: one submit of the whole
        duration would be sized at the idle clock and end early once the clock rises, and
        short submits keep the fence timeout far away.  Every kernel writes only its outputs
        from unchanged inputs, so the extra runs do not change what is verified.
        """
        ctx = self.ctx
        start = time.perf_counter()
        probe = ctx.dispatch(pipe, buffers, groups, push)
        each_s = probe.gpu_ns[0] * 1e-9 if probe.has_gpu_time else probe.wall_s
        # At most 2000 dispatches per submit: recording each one costs the host microseconds.
        batch = min(max(int(0.05 / max(each_s, 1e-9)), 1), 2000)
        while time.perf_counter() - start < seconds:
            ctx.dispatch(pipe, buffers, groups, push, warmup=batch - 1)

    def expect(self, name: str, expected: np.ndarray) -> np.ndarray:
        return _expect(self.tamper, name, expected)

    def release(self) -> None:
        for buf in self.buffers:
            if self.pool is not None:
                self.pool.give(buf)
            else:
                buf.destroy()
        self.buffers.clear()

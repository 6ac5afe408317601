"""The finding codes of the smoke dispatch and the kernel suite (listed in report.codes as
``vkdoctor.kernels.suite``, which re-exports this table)."""

from __future__ import annotations

from vkdoctor.report.codes import CodeInfo, code_table
from vkdoctor.report.model import Severity

_RUN03 = "See failure mode RUN-03 (GPU hang / device lost)."

CODES = code_table(
    [
        CodeInfo(
            "dispatch-wrong-result",
            Severity.FAIL,
            "The smoke compute shader produced wrong results",
            "vkdoctor's smoke shader does only exact 32-bit integer and float arithmetic, so "
            "its output must match numpy bit for bit on every conformant device.",
            causes=(
                "a driver or compiler bug",
                "specialization constants ignored (the smoke shader's default workgroup size "
                "is 1, so most elements stay unwritten)",
                "memory corruption or an unhealthy GPU",
            ),
            remedy="Update the driver; if it persists with vkdoctor's trivial shader, report it "
            "to the driver vendor with this report attached.",
        ),
        CodeInfo(
            "dispatch-push-constants-stale",
            Severity.FAIL,
            "A second dispatch reused the first dispatch's push constants",
            "The smoke shader ran twice with different push constants; the second result "
            "equals what the first push constants produce (RUN-04).",
            causes=(
                "a pipeline or layout cache keyed without the push-constant range",
                "push constants not re-recorded after a cache hit",
                "a driver bug in push-constant updates",
            ),
            remedy="Include push-constant size/layout and specialization data in pipeline cache "
            "keys and re-apply push constants on every dispatch; if vkdoctor itself shows this, "
            "the driver is at fault: update it.",
        ),
        CodeInfo(
            "dispatch-out-of-bounds-write",
            Severity.FAIL,
            "The smoke shader wrote past the end of its output",
            "Elements after the last one the shader may write were changed.",
            causes=("a driver bug in bounds handling", "a wrong workgroup size"),
            remedy="Update the driver and report the bug with this report attached.",
        ),
        CodeInfo(
            "dispatch-device-lost",
            Severity.FAIL,
            "The device was lost during the smoke dispatch (VK_ERROR_DEVICE_LOST)",
            "The GPU reset or faulted while running vkdoctor's trivial shader. " + _RUN03,
            causes=("GPU hang or reset", "driver bug", "hardware, power or thermal problems"),
            remedy="Check `dmesg` / `journalctl -k` for GPU reset, Xid or hang messages; update "
            "the driver; check power and thermals.",
        ),
        CodeInfo(
            "dispatch-timeout",
            Severity.FAIL,
            "The smoke dispatch did not finish in time",
            "vkWaitForFences timed out on a dispatch that takes microseconds. " + _RUN03,
            causes=("a hung GPU or driver", "a device saturated by other work"),
            remedy="Check `dmesg` / `journalctl -k` for GPU hang messages and what else is "
            "using the GPU (`nvidia-smi`, `radeontop`, `intel_gpu_top`); update the driver.",
        ),
        CodeInfo(
            "dispatch-no-compute-queue",
            Severity.FAIL,
            "The device has no compute queue",
            "No queue family of this device has VK_QUEUE_COMPUTE_BIT; it cannot run compute "
            "work (DEV-02).",
            causes=("a display-, video- or graphics-only device",),
            remedy="Use another device for compute.",
        ),
        CodeInfo(
            "dispatch-vulkan-error",
            Severity.FAIL,
            "A Vulkan call failed while preparing or running the smoke dispatch",
            "Creating the device, buffers or pipeline, or submitting the work, returned an "
            "error VkResult.",
            causes=("out of device or host memory", "a driver bug", "an incomplete driver"),
            remedy="Look at the failing call and VkResult in the evidence; update the driver.",
        ),
        CodeInfo(
            "dispatch-shader-missing",
            Severity.FAIL,
            "vkdoctor's SPIR-V modules are missing",
            "The package data holding the compiled shaders could not be read.",
            causes=("a broken installation",),
            remedy="Reinstall vkdoctor.",
        ),
        CodeInfo(
            "dispatch-no-timestamps",
            Severity.INFO,
            "The compute queue cannot write timestamps",
            "timestampValidBits is 0 for every compute queue family, so GPU times are "
            "unavailable; host wall-clock times are reported instead.",
        ),
        CodeInfo(
            "kernel-wrong-result",
            Severity.FAIL,
            "A benchmark kernel produced wrong results",
            "The kernel's output disagrees with numpy beyond the error bound of its arithmetic.",
            causes=("a driver or shader-compiler bug", "an unhealthy GPU (memory errors)"),
            remedy="Update the driver; if it persists, report it with this report attached.",
        ),
        CodeInfo(
            "kernel-failed",
            Severity.FAIL,
            "A benchmark kernel could not run",
            "A Vulkan call failed while building or running the kernel (pipeline creation "
            "counts as compiling the shader).",
            causes=("out of device memory", "a shader-compiler bug", "an incomplete driver"),
            remedy="Look at the failing call and VkResult in the evidence; update the driver.",
        ),
        CodeInfo(
            "kernel-timeout",
            Severity.FAIL,
            "A benchmark kernel did not finish in time",
            "vkWaitForFences timed out; the device may be hung. " + _RUN03,
            causes=("a hung GPU", "a device much slower than its type suggests"),
            remedy="Check `dmesg` / `journalctl -k` for GPU hang messages; update the driver.",
        ),
        CodeInfo(
            "kernel-device-lost",
            Severity.FAIL,
            "The device was lost while running a benchmark kernel",
            "VK_ERROR_DEVICE_LOST: the GPU reset or faulted. " + _RUN03,
            causes=("GPU hang or reset", "driver bug", "power or thermal problems"),
            remedy="Check `dmesg` / `journalctl -k` for GPU reset or Xid messages; update the "
            "driver; check power and thermals.",
        ),
        CodeInfo(
            "kernel-unsupported",
            Severity.INFO,
            "A benchmark kernel does not apply to this device",
            "The device lacks a feature or limit the kernel needs (for example shaderFloat16).",
        ),
    ]
)

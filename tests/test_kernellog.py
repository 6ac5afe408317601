"""Kernel-log scanning for GPU faults (RUN-03)."""

from pathlib import Path

from vkdoctor.system import kernellog

RECORDS = [
    "6,1201,5000000,-;NVRM: Xid (PCI:0000:01:00): 79, pid=1234, GPU has fallen off the bus.\n",
    "4,1202,9000000,-;amdgpu 0000:03:00.0: amdgpu: GPU reset begin!\n",
    "6,1203,9500000,-;usb 1-1: new high-speed USB device number 2\n",
    "3,1204,9800000,-;i915 0000:00:02.0: [drm] GPU HANG: ecode 12:1:85dffffb\n",
    "garbage without a header",
]


def test_parse_records_reads_boot_time_and_message() -> None:
    lines = kernellog.parse_records(RECORDS)
    assert [line.seconds for line in lines] == [5.0, 9.0, 9.5, 9.8]
    assert lines[1].message == "amdgpu 0000:03:00.0: amdgpu: GPU reset begin!"


def test_only_gpu_faults_after_the_start_are_kept(tmp_path: Path) -> None:
    saved = tmp_path / "kmsg"  # a saved log: many records per read, unlike /dev/kmsg
    saved.write_text("".join(RECORDS[:4]) + " SUBSYSTEM=pci\n")
    assert kernellog.gpu_faults_since(6.0, str(saved)) == [
        "amdgpu 0000:03:00.0: amdgpu: GPU reset begin!",
        "i915 0000:00:02.0: [drm] GPU HANG: ecode 12:1:85dffffb",
    ]


def test_unreadable_log_is_none(tmp_path: Path) -> None:
    assert kernellog.gpu_faults_since(0.0, str(tmp_path / "absent")) is None


def test_real_kmsg_is_read_without_blocking() -> None:
    result = kernellog.gpu_faults_since(kernellog.boot_seconds())
    assert result is None or result == []  # nothing can have faulted in the last instant

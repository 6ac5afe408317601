"""The loader-log agreement check (a driver vkdoctor finds usable but the loader rejects)."""

from vkdoctor.probes.driver_enumeration import CODES

from vkdoctor.loader import libcheck
from vkdoctor.loader import log as loaderlog
from vkdoctor.report.records import DriverRecord

LOG = """DRIVER:           Found ICD manifest file /x/icd.d/good.json, version "1.0.0"
ERROR:            loader_scanned_icd_add: Could not get 'vkCreateInstance' via 'vk_icdGetInstanceProcAddr' for ICD /lib/libgood.so
WARNING:          vkEnumerateInstanceLayerProperties: Unable to resolve symbol "" in implicit layer library "/lib/libgood.so"
"""


def _record(**extra: object) -> DriverRecord:
    fields: dict = {
        "manifest": "/x/icd.d/good.json",
        "resolved": "/lib/libgood.so",
        "state": "usable",
        **extra,
    }
    return DriverRecord(**fields)


def test_complaint_about_a_driver_we_found_usable() -> None:
    entries = loaderlog.parse(LOG)
    (finding,) = libcheck.loader_complaints(CODES, "loader-disagrees", entries, [_record()])
    assert "Could not get 'vkCreateInstance'" in finding.summary
    assert (
        len(finding.evidence["loader_lines"]) == 1
    )  # the harmless device-select line is not counted


def test_no_complaint_when_already_diagnosed_or_broken() -> None:
    entries = loaderlog.parse(LOG)
    records = [
        _record(issues=("driver-old-interface",)),
        _record(state="broken"),
        _record(filtered="x"),
    ]
    assert libcheck.loader_complaints(CODES, "loader-disagrees", entries, records) == []


def test_a_hostile_elf_header_is_judged_without_reading_its_claimed_tables(tmp_path) -> None:
    """65535 program headers of 65535 bytes each (4 GiB) in a 64-byte file: elf_end reads no
    table it claims, and calls the file truncated (its headers describe far more than it has)."""
    import struct

    from vkdoctor.loader.libraries import elf_end

    head = bytearray(64)
    head[:6] = b"\x7fELF\x02\x01"
    head[32:48] = struct.pack("<QQ", 64, 0)
    head[54:62] = struct.pack("<HHHH", 0xFFFF, 0xFFFF, 0, 0)
    path = tmp_path / "libhostile.so"
    path.write_bytes(bytes(head))
    assert elf_end(path) == (64, 64 + 0xFFFF * 0xFFFF)

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

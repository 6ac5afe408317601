"""The Debian releases of the matrix: what each is expected to ship (stdlib only: build.py runs
with any Python 3, before vkdoctor is installed anywhere)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Release:
    name: str
    number: str
    # The release's loader and Mesa series, as the issue states them; the real versions are read
    # from the chroot's dpkg database after the build (build.py records them).
    loader_series: str
    mesa_series: str
    # Set where the release's python3 is older than vkdoctor supports (3.10): the builder then
    # compiles this CPython from the Debian source package named below inside the chroot with the
    # chroot's gcc (README.md says why this and not a wider range or a borrowed interpreter).
    build_python: str | None = None


# bookworm's python3.11 source, fetched from the same Debian mirror the host's apt uses.
PYTHON_SOURCE = "pool/main/p/python3.11/python3.11_3.11.2.orig.tar.gz"
PYTHON_SOURCE_SHA256 = "2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849"

RELEASES: tuple[Release, ...] = (
    Release("bullseye", "11", "1.2.162", "20.3", build_python="3.11.2"),
    Release("bookworm", "12", "1.3.239", "22.3"),
    Release("trixie", "13", "1.4.309", "25.0"),
    Release("sid", "unstable", "1.4.3", "26"),
)


def by_name(name: str) -> Release:
    for release in RELEASES:
        if release.name == name:
            return release
    raise KeyError(name)

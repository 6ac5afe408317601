"""os-release parsing and distribution-aware install commands."""

from __future__ import annotations

import os
import string
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vkdoctor.engine.env import Env
from vkdoctor.system import distro


def _env(root: Path, machine: str = "x86_64") -> Env:
    return Env(environ={}, root=root, procfs=root / "proc", machine=machine)


def _os_release(root: Path, text: str, logical: str = "/etc/os-release") -> None:
    path = root / logical.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _rel(ident: str, like: str = "") -> dict[str, object]:
    return {"id": ident, "id_like": like.split()}


# --- parsing ---------------------------------------------------------------------------------


def test_parse_os_release_quoting_and_comments() -> None:
    text = (
        "# comment\n"
        'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'
        "ID=debian\n"
        "VERSION_ID='12'\n"
        'NAME="say \\"hi\\" \\$HOME \\n"\n'
        "not an assignment\n"
        "1BAD=x\n"
        "  ID_LIKE = ubuntu \n"
        "EMPTY=\n"
    )
    parsed = distro.parse_os_release(text)
    assert parsed["PRETTY_NAME"] == "Debian GNU/Linux 12 (bookworm)"
    assert parsed["ID"] == "debian"
    assert parsed["VERSION_ID"] == "12"
    # Only \" \\ \$ \` are escapes inside double quotes; "\n" stays as backslash + n.
    assert parsed["NAME"] == 'say "hi" $HOME \\n'
    assert parsed["ID_LIKE"] == "ubuntu"
    assert parsed["EMPTY"] == ""
    assert "1BAD" not in parsed
    assert len(parsed) == 6


def test_os_release_reads_etc_first(tmp_path: Path) -> None:
    _os_release(tmp_path, "ID=ubuntu\nID_LIKE=debian\nVERSION_ID=22.04\n")
    _os_release(tmp_path, "ID=other\n", "/usr/lib/os-release")
    info = distro.os_release(_env(tmp_path))
    assert info == {
        "id": "ubuntu",
        "id_like": ["debian"],
        "version_id": "22.04",
        "version_codename": None,
        "pretty_name": None,
        "name": None,
        "source": "/etc/os-release",
    }


def test_os_release_falls_back_to_usr_lib(tmp_path: Path) -> None:
    _os_release(tmp_path, 'ID="fedora"\nPRETTY_NAME="Fedora Linux 40"\n', "/usr/lib/os-release")
    info = distro.os_release(_env(tmp_path))
    assert info["id"] == "fedora"
    assert info["pretty_name"] == "Fedora Linux 40"
    assert info["source"] == "/usr/lib/os-release"


def test_os_release_relative_symlink_inside_root(tmp_path: Path) -> None:
    _os_release(tmp_path, "ID=arch\n", "/usr/lib/os-release")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/os-release").symlink_to("../usr/lib/os-release")
    info = distro.os_release(_env(tmp_path))
    assert (info["id"], info["source"]) == ("arch", "/etc/os-release")


def test_os_release_missing_means_unknown(tmp_path: Path) -> None:
    info = distro.os_release(_env(tmp_path))
    assert info["id"] is None and info["source"] is None and info["id_like"] == []


def test_os_release_without_id_defaults_to_linux(tmp_path: Path) -> None:
    _os_release(tmp_path, "NAME=Something\n")
    assert distro.os_release(_env(tmp_path))["id"] == "linux"


def test_os_release_directory_and_fifo_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "etc/os-release").mkdir(parents=True)
    (tmp_path / "usr/lib").mkdir(parents=True)
    os.mkfifo(tmp_path / "usr/lib/os-release")  # must not block
    info = distro.os_release(_env(tmp_path))
    assert info["id"] is None


def test_os_release_binary_garbage(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/os-release").write_bytes(b"\xff\xfe\x00ID=\x80deb\nID=alpine\n\x00\x00")
    assert distro.os_release(_env(tmp_path))["id"] == "alpine"


_VALUE_CHARS = string.ascii_letters + string.digits + " ._-/()\"'$`\\!#=:"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_parse_os_release_never_raises(text: str) -> None:
    parsed = distro.parse_os_release(text)
    for key, value in parsed.items():
        assert key.isidentifier()
        assert isinstance(value, str)


def _shell_quote(value: str) -> str:
    escaped = "".join("\\" + c if c in '"\\$`' else c for c in value)
    return f'"{escaped}"'


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.from_regex(r"[A-Z_][A-Z0-9_]{0,15}", fullmatch=True),
        st.text(alphabet=_VALUE_CHARS, max_size=40),
        max_size=8,
    )
)
def test_parse_os_release_roundtrips_quoted_values(fields: dict[str, str]) -> None:
    text = "".join(f"{k}={_shell_quote(v)}\n" for k, v in fields.items())
    assert distro.parse_os_release(text) == fields


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_os_release_from_arbitrary_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "etc").mkdir()
        (root / "etc/os-release").write_bytes(data)
        info = distro.os_release(_env(root))
        assert isinstance(info["id"], str) and info["id"]
        assert all(isinstance(x, str) for x in info["id_like"])
        assert distro.install_command("loader", info)  # any distro gets some advice


# --- families and commands -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ident", "like", "expected"),
    [
        ("debian", "", "debian"),
        ("ubuntu", "debian", "debian"),
        ("linuxmint", "ubuntu debian", "debian"),
        ("pop", "ubuntu debian", "debian"),
        ("fedora", "", "fedora"),
        ("rocky", "rhel centos fedora", "fedora"),
        ("almalinux", "rhel centos fedora", "fedora"),
        ("arch", "", "arch"),
        ("manjaro", "arch", "arch"),
        ("steamos", "arch", "arch"),
        ("opensuse-tumbleweed", "opensuse suse", "suse"),
        ("sles", "suse", "suse"),
        ("alpine", "", "alpine"),
        ("postmarketos", "alpine", "alpine"),
        ("gentoo", "", None),
        ("nixos", "", None),
    ],
)
def test_family(ident: str, like: str, expected: str | None) -> None:
    assert distro.family(_rel(ident, like)) == expected


def test_family_accepts_id_like_as_string_and_odd_case() -> None:
    assert distro.family({"id": "Mint", "id_like": "Ubuntu"}) == "debian"
    assert distro.family({}) is None
    assert distro.family({"id": None, "id_like": None}) is None


_EXPECTED: dict[tuple[str, str], str] = {
    ("loader", "debian"): "sudo apt-get install libvulkan1",
    ("loader", "fedora"): "sudo dnf install vulkan-loader",
    ("loader", "arch"): "sudo pacman -S vulkan-icd-loader",
    ("loader", "opensuse-tumbleweed"): "sudo zypper install libvulkan1",
    ("loader", "alpine"): "sudo apk add vulkan-loader",
    ("loader-32bit", "debian"): "sudo dpkg --add-architecture i386 && sudo apt-get update && "
    "sudo apt-get install libvulkan1:i386",
    ("loader-32bit", "fedora"): "sudo dnf install vulkan-loader.i686",
    ("loader-32bit", "arch"): "sudo pacman -S lib32-vulkan-icd-loader",
    ("loader-32bit", "opensuse-tumbleweed"): "sudo zypper install libvulkan1-32bit",
    ("mesa-vulkan", "debian"): "sudo apt-get install mesa-vulkan-drivers",
    ("mesa-vulkan", "fedora"): "sudo dnf install mesa-vulkan-drivers",
    ("mesa-vulkan", "arch"): "sudo pacman -S vulkan-radeon vulkan-intel vulkan-swrast",
    ("mesa-vulkan", "opensuse-tumbleweed"): "sudo zypper install libvulkan_radeon "
    "libvulkan_intel libvulkan_lvp",
    ("mesa-vulkan", "alpine"): "sudo apk add mesa-vulkan-ati mesa-vulkan-intel mesa-vulkan-swrast",
    ("mesa-vulkan-32bit", "debian"): "sudo dpkg --add-architecture i386 && sudo apt-get update"
    " && sudo apt-get install mesa-vulkan-drivers:i386",
    ("mesa-vulkan-32bit", "fedora"): "sudo dnf install mesa-vulkan-drivers.i686",
    ("mesa-vulkan-32bit", "arch"): "sudo pacman -S lib32-vulkan-radeon lib32-vulkan-intel "
    "lib32-vulkan-swrast",
    ("vulkan-tools", "debian"): "sudo apt-get install vulkan-tools",
    ("vulkan-tools", "alpine"): "sudo apk add vulkan-tools",
    ("validation-layers", "debian"): "sudo apt-get install vulkan-validationlayers",
    ("validation-layers", "fedora"): "sudo dnf install vulkan-validation-layers",
    ("validation-layers", "arch"): "sudo pacman -S vulkan-validation-layers",
    ("validation-layers", "opensuse-tumbleweed"): "sudo zypper install vulkan-validationlayers",
    ("shader-compiler", "debian"): "sudo apt-get install glslang-tools",
    ("shader-compiler", "fedora"): "sudo dnf install glslang",
    ("shader-compiler", "arch"): "sudo pacman -S glslang",
    ("shader-compiler", "alpine"): "sudo apk add glslang",
}


@pytest.mark.parametrize(("component", "ident"), sorted(_EXPECTED))
def test_install_command_exact(component: str, ident: str) -> None:
    assert distro.install_command(component, _rel(ident)) == _EXPECTED[(component, ident)]


def test_derivative_uses_parent_packages() -> None:
    mint = _rel("linuxmint", "ubuntu debian")
    assert distro.install_command("loader", mint) == "sudo apt-get install libvulkan1"
    rocky = _rel("rocky", "rhel centos fedora")
    assert distro.install_command("vulkan-tools", rocky) == "sudo dnf install vulkan-tools"


@pytest.mark.parametrize(
    ("ident", "expected"),
    [
        ("debian", "sudo apt-get install --reinstall libvulkan1"),
        ("fedora", "sudo dnf reinstall vulkan-loader"),
        ("arch", "sudo pacman -S vulkan-icd-loader"),
        ("opensuse-leap", "sudo zypper install --force libvulkan1"),
        ("alpine", "sudo apk fix --reinstall vulkan-loader"),
    ],
)
def test_reinstall_command(ident: str, expected: str) -> None:
    assert distro.reinstall_command("loader", _rel(ident)) == expected


def test_reinstall_32bit_debian_needs_no_architecture_setup() -> None:
    assert (
        distro.reinstall_command("loader-32bit", _rel("debian"))
        == "sudo apt-get install --reinstall libvulkan1:i386"
    )


def test_unknown_distribution_gets_a_sentence_naming_the_debian_package() -> None:
    advice = distro.install_advice("mesa-vulkan", _rel("gentoo"))
    assert advice.family is None and not advice.is_command
    assert "mesa-vulkan-drivers" in advice.command
    assert not advice.command.startswith("sudo")
    assert "mesa-vulkan-drivers" in distro.install_command("mesa-vulkan", {})


def test_alpine_has_no_multilib() -> None:
    advice = distro.install_advice("loader-32bit", _rel("alpine"))
    assert advice.family == "alpine" and advice.packages == () and not advice.is_command
    assert "no package" in advice.command


def test_32bit_on_aarch64() -> None:
    assert distro.install_command("loader-32bit", _rel("debian"), machine="aarch64") == (
        "sudo dpkg --add-architecture armhf && sudo apt-get update && "
        "sudo apt-get install libvulkan1:armhf"
    )
    assert not distro.install_advice("loader-32bit", _rel("fedora"), machine="aarch64").packages


def test_arch_notes_mention_multilib() -> None:
    advice = distro.install_advice("loader-32bit", _rel("manjaro", "arch"))
    assert advice.is_command and "multilib" in advice.note


def test_install_command_from_env(tmp_path: Path) -> None:
    _os_release(tmp_path, 'ID=arch\nPRETTY_NAME="Arch Linux"\n')
    env = _env(tmp_path)
    assert distro.install_command("loader", env) == "sudo pacman -S vulkan-icd-loader"
    assert distro.install_command("loader-32bit", env) == "sudo pacman -S lib32-vulkan-icd-loader"
    # The Env's machine decides the 32-bit packages.
    assert not distro.install_advice("loader-32bit", _env(tmp_path, "aarch64")).packages


def test_every_component_has_a_command_for_every_x86_family() -> None:
    for component in distro.COMPONENTS:
        for fam, ident in (("debian", "debian"), ("fedora", "fedora"), ("arch", "arch")):
            advice = distro.install_advice(component, _rel(ident))
            assert advice.family == fam and advice.is_command, (component, fam)
            assert advice.command.startswith("sudo ")


def test_unknown_component_is_a_caller_bug() -> None:
    with pytest.raises(ValueError, match="unknown component"):
        distro.install_command("libvulkan", _rel("debian"))

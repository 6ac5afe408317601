"""Secrets never reach any output; --redact removes home, user, host and machine ids."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import VkWorld, needs_lavapipe

from vkdoctor.engine.env import Env
from vkdoctor.loader.search import related_variables
from vkdoctor.report.redact import (
    REDACTED,
    Identity,
    is_redacted,
    looks_secret_name,
    redact_dict,
    scrub_secrets,
    scrub_text,
)


@pytest.mark.parametrize(
    "name",
    [
        "GITHUB_TOKEN",
        "AWS_SECRET_ACCESS_KEY",
        "OPENAI_API_KEY",
        "MY_PASSWORD",
        "DB_PASSWD",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "SSH_AUTH_SOCK",
        "NPM_CONFIG__AUTH",
        "PGPASSWORD",
        "SMTP_PASS",
        "VK_API_TOKEN",
        "ssh_private_key",
        "SESSIONID_COOKIE",
        "GH_PAT",
    ],
)
def test_secret_names(name: str) -> None:
    assert looks_secret_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "HOME",
        "PATH",
        "VK_DRIVER_FILES",
        "KEYBOARD_LAYOUT",
        "XDG_SESSION_TYPE",
        "PASSTHROUGH_MODE",
        "LD_LIBRARY_PATH",
        "VK_LOADER_DEBUG",
        "DISPLAY",
        "MONKEY_BUSINESS",
    ],
)
def test_ordinary_names(name: str) -> None:
    assert not looks_secret_name(name)


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("https://bob:hunter22@proxy.example.com:3128/", "hunter22"),
        ("git clone https://x-access-token:ghs_abc123@github.com/o/r", "ghs_abc123"),
        ("http://oauth2token@host/lib.so", "oauth2token"),
        ("/opt/sdk?token=abc123def&x=1", "abc123def"),
        ("curl -H 'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc123'", "eyJhbGciOiJIUzI1NiJ9"),
        ("export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG", "wJalrXUtnFEMI"),
        ("password: correct-horse-9", "correct-horse-9"),
        ("key ghp_0123456789abcdefghijABCDEFGHIJ012345 leaked", "ghp_0123456789"),
        ("glpat-abcdefghij0123456789 in a log", "glpat-abcdefghij"),
        ("AKIAABCDEFGHIJKLMNOP", "AKIAABCDEFGHIJKLMNOP"),
        ("https://store.blob.core.windows.net/c/f?sv=2020&sig=Zm9vYmFy%3D", "Zm9vYmFy"),
    ],
)
def test_credentials_in_text_are_masked(text: str, hidden: str) -> None:
    scrubbed = scrub_text(text)
    assert hidden not in scrubbed
    assert REDACTED in scrubbed
    assert scrub_text(scrubbed) == scrubbed  # idempotent


@pytest.mark.parametrize(
    "text",
    [
        "VK_LOADER_DEBUG=all",
        "child died: Signal: SIGSEGV",
        "/usr/share/vulkan/icd.d/lvp_icd.x86_64.json",
        "library_path resolves to no file",
        "Basic configuration of the driver",
        "https://github.com/KhronosGroup/Vulkan-Loader/issues/647",
        "vk_icdGetInstanceProcAddr(NULL, 'vkCreateInstance')",
        "disable_environment: NODEVICE_SELECT=1",
    ],
)
def test_ordinary_text_is_untouched(text: str) -> None:
    assert scrub_text(text) == text


def test_exact_secret_values_from_the_environment_are_masked_anywhere() -> None:
    environ = {"CI_JOB_TOKEN": "zq81-xk02-pp93", "SHORT_KEY": "1", "HOME": "/home/x"}
    data = {
        "loader_log": [{"message": "dlopen /srv/zq81-xk02-pp93/lib.so failed"}],
        "flag": "1",
        "home": "/home/x",
    }
    out = scrub_secrets(data, environ)
    assert out == {
        "loader_log": [{"message": f"dlopen /srv/{REDACTED}/lib.so failed"}],
        "flag": "1",
        "home": "/home/x",
    }


def test_named_values_are_masked_structurally() -> None:
    data = {
        "variables": {"MY_API_KEY": "abc", "HOME": "/h"},
        "evidence": {"variable": "VK_SECRET_THING", "value": "plain", "suggestion": None},
    }
    out = scrub_secrets(data, {})
    assert out["variables"] == {"MY_API_KEY": REDACTED, "HOME": "/h"}
    assert out["evidence"]["value"] == REDACTED


def test_only_allow_listed_variables_are_recorded() -> None:
    env = Env(
        environ={
            "HOME": "/home/alice",
            "PATH": "/usr/bin",
            "GITHUB_TOKEN": "ghp_0123456789abcdefghijABCDEFGHIJ012345",
            "DATABASE_URL": "postgres://app:pw-2983@db/app",
            "VK_ICD_FILES": "/typo.json",
            "VK_DRIVER_FILES": "/opt/a.json",
            "VK_ADD_LAYER_PATH": "https://u:layer-pw-77@example.com/layers",
            "XDG_DATA_DIRS": "/usr/share",
            "NVIDIA_DRIVER_CAPABILITIES": "all",
            "MESA_VK_DEVICE_SELECT": "list",
            "SOME_RANDOM": "x",
        }
    )
    assert related_variables(env) == {
        "HOME": "/home/alice",
        "MESA_VK_DEVICE_SELECT": "list",
        "NVIDIA_DRIVER_CAPABILITIES": "all",
        "VK_ADD_LAYER_PATH": f"https://{REDACTED}@example.com/layers",
        "VK_DRIVER_FILES": "/opt/a.json",
        "XDG_DATA_DIRS": "/usr/share",
    }


ALICE = Identity.build(
    homes=["/home/alice/"],
    users=["alice", "root"],
    hosts=["wks-042.corp.example.org", "debian"],
    machine_ids=["3d1219c7c4c5404aaa1f6d2a48adfda4"],
)


def test_identity_is_replaced_everywhere() -> None:
    data: dict[str, Any] = {
        "environment": {"identity": {"user": "alice", "uid": 1000}, "os": {"id": "debian"}},
        "drivers": [
            {
                "manifest": "/home/alice/.local/share/vulkan/icd.d/x.json",
                "library_path": "/home/alice-old/lib.so",
            }
        ],
        "log": "X11 display wks-042:0 on wks-042.corp.example.org, boot 3d1219c7-c4c5-404a-"
        "aa1f-6d2a48adfda4, GPU-0a1b2c3d-1111-2222-3333-444455556666",
        "other": "/home/bob/.config/vulkan and /var/home/carol/x",
        "paths": [
            "/srv/alice/data",
            "/srv/alicey/data",
            "/root/.config",
            "/mnt/home/alice/x",
            "HOME=/home/alice:/home/alice/bin",
        ],
        "devices": [{"device_uuid": "00112233", "driverUUID": "abcd", "name": "llvmpipe"}],
    }
    out = redact_dict(data, ALICE)
    assert out["environment"]["identity"]["user"] == "<user>"
    assert out["environment"]["os"]["id"] == "debian"  # generic host names are not redacted
    assert out["drivers"][0]["manifest"] == "~/.local/share/vulkan/icd.d/x.json"
    # Another directory that merely starts with the home path is another user's home.
    assert out["drivers"][0]["library_path"] == "/home/<user>/lib.so"
    assert out["log"] == ("X11 display <host>:0 on <host>, boot <machine-id>, GPU-<machine-id>")
    assert out["other"] == "/home/<user>/.config/vulkan and /var/home/<user>/x"
    assert out["paths"] == [
        "/srv/<user>/data",
        "/srv/alicey/data",
        "/root/.config",
        "/mnt/home/<user>/x",
        "HOME=~:~/bin",
    ]
    assert out["devices"][0] == {
        "device_uuid": "<machine-id>",
        "driverUUID": "abcd",
        "name": "llvmpipe",
    }
    assert is_redacted(out) and not is_redacted(data)
    assert redact_dict(out, ALICE) == out  # idempotent


def test_a_gpu_uuid_is_replaced_in_every_spelling() -> None:
    """The shape of the H200 report: NVIDIA's deviceUUID (plain hex) is the GPU UUID that
    /proc/driver/nvidia/gpus/*/information gives the environment scan (dashed) and a
    gpu-not-exposed finding's nvidia-smi list repeats; a driverUUID names a build and stays."""
    uuid = "989ee09ef74a8a14c0a770662689a634"
    dashed = "989ee09e-f74a-8a14-c0a7-70662689a634"
    data: dict[str, Any] = {
        "devices": [{"device_uuid": uuid, "driver_uuid": "c7d8a05ebe165883a8186d61bf0812b6"}],
        "environment": {"gpus": [{"slot": "0000:00:06.0", "nvidia_uuid": dashed}]},
        "probes": [
            {
                "findings": [
                    {"evidence": {"nvidia_smi": [dashed.upper()], "note": f"GPU {dashed} seen"}}
                ]
            }
        ],
    }
    out = redact_dict(data, Identity())
    text = json.dumps(out)
    assert uuid not in text and dashed not in text.lower()
    assert out["environment"]["gpus"][0] == {"slot": "0000:00:06.0", "nvidia_uuid": "<machine-id>"}
    evidence = out["probes"][0]["findings"][0]["evidence"]
    assert evidence == {"nvidia_smi": ["<machine-id>"], "note": "GPU <machine-id> seen"}
    assert out["devices"][0]["driver_uuid"] == "c7d8a05ebe165883a8186d61bf0812b6"


def test_a_stored_report_reveals_its_own_identity() -> None:
    # Redacting someone else's report on this machine still finds their home and user.
    data = {
        "environment": {"identity": {"user": "zoe"}},
        "probes": [{"id": "loader-discovery", "facts": {"variables": {"HOME": "/u/zoe"}}}],
        "note": "/u/zoe/.local/share/vulkan/icd.d/a.json",
    }
    out = redact_dict(data, Identity())
    assert out["note"] == "~/.local/share/vulkan/icd.d/a.json"
    assert out["environment"]["identity"]["user"] == "<user>"


SECRETS = {
    "GITHUB_TOKEN": "ghp_Q2xvc2VkU291cmNlSXNOb3RTZWN1cmUx23",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMIxK7MDENGxbPxRfiCYzEXAMPLE",
    "MY_APP_PASSWORD": "c0rrect-h0rse-battery",
    "VK_API_TOKEN": "vk-tok-5521-9af0",
    "DATABASE_URL": "postgres://app:db-pw-7731ab@db.internal/app",
    "VK_ADD_LAYER_PATH": "https://deploy:layer-pw-4410cd@artifacts.example.com/layers",
}
USER = "zed-qa-person"


@needs_lavapipe
def test_planted_secrets_reach_no_output(world: VkWorld, tmp_path: Path) -> None:
    """Secrets in the environment and in a manifest path; JSON, Markdown and console output
    (verbose, so evidence and facts print too) must contain none of them, and with --redact
    not the user name either."""
    home = tmp_path / "home" / USER
    # The secret is part of the manifest's directory and of its (missing) library's path.
    drivers = home / f"drivers-{SECRETS['GITHUB_TOKEN']}"
    drivers.mkdir(parents=True)
    manifest = drivers / "broken_icd.json"
    manifest.write_text(
        json.dumps(
            {
                "file_format_version": "1.0.0",
                "ICD": {
                    "library_path": f"{home}/lib-{SECRETS['AWS_SECRET_ACCESS_KEY']}/libvulkan_x.so",
                    "api_version": "1.3.239",
                },
            }
        )
    )
    world.lavapipe()
    environ = {
        **world.environ,
        **SECRETS,
        "HOME": str(home),
        "USER": USER,
        "VK_ADD_DRIVER_FILES": str(manifest),
        "NO_COLOR": "1",
        "COLUMNS": "300",
    }
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    check = subprocess.run(
        [
            sys.executable,
            "-m",
            "vkdoctor",
            "check",
            "-vv",  # everything the console can show, facts and the loader log included
            "--json",
            str(out_json),
            "--markdown",
            str(out_md),
        ],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 1, check.stderr  # the missing library is a failure
    report = json.loads(out_json.read_text())
    assert any(
        f["code"] == "driver-library-missing" for p in report["probes"] for f in p["findings"]
    )
    assert any(f["code"] == "variable-unknown" for p in report["probes"] for f in p["findings"])

    def run(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "vkdoctor", *args],
            env=environ,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode in (0, 1), done.stderr
        return done.stdout + done.stderr

    redacted = subprocess.run(
        [sys.executable, "-m", "vkdoctor", "check", "-vv", "--redact", "--json", "-"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    outputs = {
        "check console": check.stdout + check.stderr,
        "json": out_json.read_text(),
        "markdown": out_md.read_text(),
        "report show -vv": run("report", "show", "-vv", str(out_json)),
        "report markdown --no-redact": run("report", "markdown", "--no-redact", str(out_json)),
        "check --redact": redacted.stdout + redacted.stderr,
    }
    # The secrets are in the report's paths, so a leak would show.
    assert "/drivers-" in outputs["json"] and "/lib-" in outputs["json"]
    for where, text in outputs.items():
        for name, secret in SECRETS.items():
            fragment = secret.split("@")[0].split(":")[-1]  # the password part of URLs
            assert fragment not in text, f"{name} leaked into {where}"
    assert USER in outputs["json"]  # --json alone keeps identity
    for where in ("markdown", "check --redact"):
        assert USER not in outputs[where], f"the user name leaked into {where}"
        assert str(home) not in outputs[where], f"the home directory leaked into {where}"
        assert "~/drivers-" in outputs[where]


def test_redaction_module_is_headless() -> None:
    code = (
        "import sys, vkdoctor.report.redact, vkdoctor.report.schema, vkdoctor.render.diff, "
        "vkdoctor.render.markdown, vkdoctor.commands.report, vkdoctor.report.io; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('rich', 'textual')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env={**os.environ}
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_real_reports_have_no_false_positives() -> None:
    # Nothing in a real report looks like a secret, and redacting a redacted report is a no-op.
    for path in sorted((Path(__file__).resolve().parent.parent / "reports").glob("*.json")):
        if path.name == "report.schema.json":
            continue
        data = json.loads(path.read_text())
        assert scrub_secrets(data, {}) == data, path.name
        assert is_redacted(data), f"{path.name} is not redacted"
        assert redact_dict(data, Identity()) == data, path.name

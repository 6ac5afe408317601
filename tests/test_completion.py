"""``vkdoctor completion``: the scripts come from the parser and work in the real shells.

bash: the script is sourced in a real bash and its function is called the way bash calls it
(COMP_WORDS/COMP_CWORD); the expected words are read from the parser itself (argparse's own
tables), so a subcommand or option the script misses turns this red.  zsh and fish: the scripts
parse (``zsh -n``, ``fish --no-execute``) and fish completes subcommands with ``complete -C``."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys

import pytest

from vkdoctor.cli import build_parser


def _script(shell: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "vkdoctor", "completion", shell],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _sub(parser: argparse.ArgumentParser, *path: str) -> argparse.ArgumentParser:
    for name in path:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


def _visible_options(parser: argparse.ArgumentParser) -> set[str]:
    return {
        flag
        for action in parser._actions
        if action.option_strings and action.help is not argparse.SUPPRESS
        for flag in action.option_strings
    }


def _bash_complete(script: str, *words: str) -> list[str]:
    call = " ".join(f"'{w}'" for w in words)
    program = (
        f"{script}\nCOMP_WORDS=({call}); COMP_CWORD=$((${{#COMP_WORDS[@]}}-1)); _vkdoctor; "
        'printf "%s\\n" "${COMPREPLY[@]}"'
    )
    done = subprocess.run(["bash", "-c", program], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if line]


@pytest.fixture(scope="module")
def bash_script() -> str:
    return _script("bash")


def test_bash_completes_every_subcommand(bash_script: str) -> None:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    commands = set(action.choices)
    assert {"check", "trace", "report", "kernels", "completion"} <= commands
    assert set(_bash_complete(bash_script, "vkdoctor", "")) == commands
    assert _bash_complete(bash_script, "vkdoctor", "ch") == ["check"]
    report_parser = _sub(parser, "report")
    sub = next(a for a in report_parser._actions if isinstance(a, argparse._SubParsersAction))
    report = set(sub.choices)
    assert set(_bash_complete(bash_script, "vkdoctor", "report", "")) == report


@pytest.mark.parametrize("path", [("check",), ("trace",), ("kernels",), ("report", "diff")])
def test_bash_completes_every_visible_option_and_no_hidden_alias(
    bash_script: str, path: tuple[str, ...]
) -> None:
    offered = set(_bash_complete(bash_script, "vkdoctor", *path, "-"))
    assert offered == _visible_options(_sub(build_parser(), *path))
    assert "--no-color" not in offered and "--list-probes" not in offered


def test_bash_completes_choices_values_and_probes(bash_script: str) -> None:
    assert _bash_complete(bash_script, "vkdoctor", "check", "--color", "") == [
        "auto",
        "always",
        "never",
    ]
    # An option's value is not taken for a subcommand: still check's options after it.
    after = _bash_complete(bash_script, "vkdoctor", "check", "--json", "out.json", "--fail")
    assert after == ["--fail-on"]
    assert _bash_complete(bash_script, "vkdoctor", "check", "dev") == ["device"]
    # After `--` the words belong to the traced program.
    assert _bash_complete(bash_script, "vkdoctor", "trace", "--", "./app", "--") == []


def test_zsh_script_parses_and_loads() -> None:
    if shutil.which("zsh") is None:
        pytest.skip("zsh is not installed (bootstrap.sh test installs it)")
    path = _script("zsh")
    assert subprocess.run(["zsh", "-n"], input=path, text=True, timeout=30).returncode == 0
    loaded = subprocess.run(
        ["zsh", "-f", "-c", f"{path}\n(( $+functions[_vkdoctor] )) && echo loaded"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert loaded.stdout.strip() == "loaded", loaded.stderr


def test_fish_script_parses_and_completes_subcommands(tmp_path) -> None:
    if shutil.which("fish") is None:
        pytest.skip("fish is not installed (bootstrap.sh test installs it)")
    script = tmp_path / "vkdoctor.fish"
    script.write_text(_script("fish"))
    assert subprocess.run(["fish", "--no-execute", str(script)], timeout=30).returncode == 0
    done = subprocess.run(
        ["fish", "--no-config", "-c", f"source {script}; complete -C'vkdoctor report '"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    offered = {line.split("\t")[0] for line in done.stdout.splitlines()}
    assert offered == {"show", "validate", "diff", "markdown", "summarize"}, done.stderr


def test_unknown_shell_is_a_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "vkdoctor", "completion", "tcsh"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1

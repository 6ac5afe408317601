"""vkdoctor(1): generated from the parser, committed, installed, and rendered by the real groff
and man without a warning; it names every subcommand and every visible option the parser has
(read from argparse's own tables, not from the generator)."""

from __future__ import annotations

import argparse
import shutil
import subprocess

import pytest

from vkdoctor.cli import build_parser
from vkdoctor.manpage import PAGE, render


def _walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _walk(child, (*path, name))


def _rendered(page: str) -> str:
    if shutil.which("groff") is None:
        pytest.skip("groff is not installed (groff-base; bootstrap.sh installs it)")
    done = subprocess.run(
        ["groff", "-man", "-Tutf8", "-ww", "-P-c", "-P-b", "-P-u"],
        input=page,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return done.stdout


def test_the_committed_page_is_the_generated_one() -> None:
    assert PAGE.read_text() == render(build_parser()), (
        "regenerate it: python -m vkdoctor.manpage --write"
    )


def test_groff_renders_it_without_warnings_and_it_lists_every_command_and_option() -> None:
    text = _rendered(render(build_parser()))
    # groff may hyphenate at a line end; join those before looking words up.
    flat = " ".join(text.replace("\u2010\n", "").replace("-\n", "-").split())
    for path, parser in _walk(build_parser()):
        if path:
            assert "vkdoctor " + " ".join(path) in flat, path
        for action in parser._actions:
            if action.help is argparse.SUPPRESS:
                continue  # hidden old spellings are left out, as in --help
            for flag in action.option_strings:
                assert flag in flat, (path, flag)


def test_man_reads_it(tmp_path) -> None:
    if shutil.which("man") is None:
        pytest.skip("man is not installed (man-db; bootstrap.sh installs it)")
    done = subprocess.run(
        ["man", "-l", "--warnings", str(PAGE)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "MANPAGER": "cat", "MANWIDTH": "80", "LANG": "C.UTF-8"},
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert "vkdoctor check" in done.stdout

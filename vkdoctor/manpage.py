"""The man page, vkdoctor(1), generated from the argument parser.

    python -m vkdoctor.manpage           print the roff source
    python -m vkdoctor.manpage --write   rewrite man/vkdoctor.1 (installed as share/man/man1)

The committed page is what ``pip install`` installs (setup.py's data_files: building it at
install time would import vkdoctor's dependencies inside the build environment); a test fails
until the committed page equals the generated one, as for the report schema.  Every subcommand
and every visible option comes from the parser walk of ``vkdoctor.completion``, so neither can
be forgotten here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vkdoctor.completion import Command, Option, command_tree

PAGE = Path(__file__).resolve().parent.parent / "man" / "vkdoctor.1"

MAX_WORDS = 12
EXIT_STATUS = (
    ("0", "healthy: informational findings only"),
    ("1", "a warning or failure, a timeout or a crash (--fail-on fail ignores warnings)"),
    ("2", "usage error (the message is one line)"),
    ("3", "internal error of vkdoctor; the message says where the report is"),
    ("128+N", "stopped by signal N (SIGINT, SIGTERM, SIGHUP); the partial report is named"),
)
ENVIRONMENT = (
    ("NO_COLOR", "when set, no colours (as --color never)"),
    ("COLUMNS", "the width output is wrapped to, also when it is not a terminal"),
    ("VKDOCTOR_REQUIRE", "';'-separated --require expressions of check"),
)


def _text(text: str) -> str:
    """Escape roff: backslashes, and a line starting with '.' or "'" would be a request."""
    text = " ".join(text.split()).replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + text if text[:1] in (".", "'") else text


def _option(option: Option) -> str:
    flags = ", ".join(f"\\fB{_text(flag)}\\fR" for flag in option.flags)
    if option.takes_value:
        value = "|".join(option.choices) if option.choices else option.metavar
        flags += f" \\fI{_text(value)}\\fR"
    return f".TP\n{flags}\n{_text(option.help) or 'See the description.'}"


def _section(command: Command) -> list[str]:
    name = " ".join(("vkdoctor", *command.path))
    lines = [f".SS {_text(name)}"]
    if command.help:
        lines.append(_text(command.help))
    if command.subcommands:
        lines.append(".PP\nSubcommands:")
        for sub, text in command.subcommands:
            lines.append(f".TP\n\\fB{_text(sub)}\\fR\n{_text(text)}")
    if command.words and len(command.words) <= MAX_WORDS:  # not every finding code of explain
        lines.append(f".PP\nArguments: {_text(', '.join(command.words))}.")
    lines.extend(_option(option) for option in command.options if option.flags[0] != "-h")
    return lines


def render(parser: argparse.ArgumentParser) -> str:
    import vkdoctor

    tree = command_tree(parser)
    root, commands = tree[0], tree[1:]
    lines = [
        f'.TH VKDOCTOR 1 "" "vkdoctor {vkdoctor.__version__}" "User Commands"',
        ".SH NAME",
        "vkdoctor \\- " + _text(str(parser.description or "")),
        ".SH SYNOPSIS",
    ]
    for name, _ in root.subcommands:
        lines.append(f".B vkdoctor {_text(name)}\n[\\fIOPTIONS\\fR]\n.br")
    lines += [
        ".SH DESCRIPTION",
        "vkdoctor diagnoses the Vulkan loader, drivers, layers and devices of this machine, "
        "each step in an isolated child process, and names the cause of a failure with the "
        "command that fixes it.",
        ".PP",
        "Shared options mean the same in every command: \\fB\\-\\-json\\fR \\fIPATH\\fR "
        "(\\(aq\\-\\(aq for stdout), \\fB\\-\\-markdown\\fR \\fIPATH\\fR, \\fB\\-\\-redact\\fR, "
        "\\fB\\-v\\fR/\\fB\\-vv\\fR, \\fB\\-q\\fR, \\fB\\-\\-fail\\-on\\fR, "
        "\\fB\\-\\-color\\fR, \\fB\\-\\-list\\fR, \\fB\\-\\-timeout\\fR (one native step) and "
        "\\fB\\-\\-deadline\\fR (the whole run).",
        ".SH OPTIONS",
    ]
    lines.extend(_option(option) for option in root.options)
    lines.append(".SH COMMANDS")
    for command in commands:
        lines.extend(_section(command))
    lines.append(".SH EXIT STATUS")
    for code, text in EXIT_STATUS:
        lines.append(f".TP\n\\fB{_text(code)}\\fR\n{_text(text)}")
    lines.append(".SH ENVIRONMENT")
    for name, text in ENVIRONMENT:
        lines.append(f".TP\n\\fB{name}\\fR\n{_text(text)}")
    lines += [
        ".SH SEE ALSO",
        "\\fBvulkaninfo\\fR(1); the shell completion: \\fBvkdoctor completion bash\\fR.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from vkdoctor.cli import build_parser

    text = render(build_parser())
    if "--write" in (argv if argv is not None else sys.argv[1:]):
        PAGE.parent.mkdir(exist_ok=True)
        PAGE.write_text(text)
        print(f"wrote {PAGE}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

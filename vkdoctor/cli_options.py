"""The options every subcommand shares, defined once: one spelling, one meaning, one check.

    --json PATH       the result as JSON ('-': stdout; the console then goes to stderr)
    --markdown PATH   Markdown for an issue tracker (redacted unless --no-redact)
    --redact          home, user and host names replaced in every output
    -v / -vv          more detail: every finding with its evidence / everything
    -q, --quiet       the verdict only
    --fail-on LEVEL   exit 1 on warnings and failures (warn) or failures only (fail)
    --color WHEN      auto | always | never (NO_COLOR and --no-color mean never)
    --list            list what the command knows (probes, kernels, codes) and exit
    --timeout S       the limit for one native step
    --deadline S      the limit for the whole run

Output destinations are checked while the command line is parsed, so ``--json /no/dir/r.json``
is a one-line usage error before minutes of work, not after.  Old spellings stay as hidden
aliases (``--no-color``, ``--strict``, ``--list-probes``, ``--list-kernels``, ``-o``) so scripts
keep working; they are left out of --help, the completions and the man page.

Standard library only: ``vkdoctor --help`` must stay instant.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from vkdoctor import argtypes

COLOR_CHOICES = ("auto", "always", "never")
FAIL_ON_CHOICES = ("warn", "fail")


def output_path(option: str) -> Callable[[str], str]:
    """An output destination that can be written: '-' or an inherited /dev/fd, a regular file,
    a FIFO or character device (written, never replaced), or a new name in a writable folder."""

    def parse(text: str) -> str:
        from vkdoctor.report.io import OutputError, check_destination

        try:
            check_destination(text)
        except OutputError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text

    parse.__name__ = "path"  # argparse names the type in "invalid path value"
    return parse


def add_json(parser: argparse.ArgumentParser, what: str = "the JSON report") -> None:
    parser.add_argument(
        "--json",
        metavar="PATH",
        type=output_path("--json"),
        default=None,
        help=f"write {what} to PATH ('-' for stdout)",
    )


def add_markdown(
    parser: argparse.ArgumentParser,
    default: str | None = None,
    aliases: tuple[str, ...] = (),
    what: str = "a Markdown report for an issue tracker",
    redacted: bool = True,
) -> None:
    """``--markdown PATH``; ``aliases`` are old spellings kept hidden (``report markdown -o``)."""
    parser.add_argument(
        "--markdown",
        metavar="PATH",
        type=output_path("--markdown"),
        default=default,
        help=f"write {what} to PATH ('-' for stdout)"
        + ("; redacted unless --no-redact" if redacted else "")
        + (" (default: stdout)" if default == "-" else ""),
    )
    if aliases:
        parser.add_argument(
            *aliases, dest="markdown", type=output_path(aliases[-1]), help=argparse.SUPPRESS
        )


def add_redact(parser: argparse.ArgumentParser, default: bool | None = None) -> None:
    """--redact / --no-redact.  ``None`` (check, trace): the Markdown is redacted, the console
    and JSON are not, unless asked; ``True``: everything is redacted unless --no-redact."""
    group = parser.add_mutually_exclusive_group()
    always = " (the default)" if default is True else ""
    group.add_argument(
        "--redact",
        dest="redact",
        action="store_true",
        default=default,
        help=f"replace home, user, host and machine names in every output{always}",
    )
    group.add_argument(
        "--no-redact",
        dest="redact",
        action="store_false",
        help="keep paths and names as recorded, in the Markdown too",
    )


def add_verbosity(parser: argparse.ArgumentParser) -> None:
    """-v (count) and -q; ``args.verbose`` is 0, 1 or 2 and ``args.quiet`` a bool."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="-v: every finding with its evidence; -vv: everything (facts, the loader log)",
    )
    group.add_argument(
        "-q", "--quiet", action="store_true", default=False, help="print the verdict only"
    )


def add_fail_on(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fail-on",
        choices=FAIL_ON_CHOICES,
        default="warn",
        help="exit 1 on warnings and failures (warn, the default) or on failures only (fail)",
    )
    # The old name of the default; scripts still pass it.
    parser.add_argument("--strict", action="store_true", help=argparse.SUPPRESS)


def add_color(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--color",
        choices=COLOR_CHOICES,
        default="auto",
        help="colours and styles: auto (on a terminal, unless NO_COLOR is set), always, never",
    )
    parser.add_argument(
        "--no-color", dest="color", action="store_const", const="never", help=argparse.SUPPRESS
    )


def color_mode(args: argparse.Namespace) -> str:
    """auto, always or never, with NO_COLOR (https://no-color.org) turning auto into never."""
    mode = getattr(args, "color", "auto") or "auto"
    if mode == "auto" and os.environ.get("NO_COLOR"):
        return "never"
    return mode


def add_list(parser: argparse.ArgumentParser, what: str, aliases: tuple[str, ...] = ()) -> None:
    parser.add_argument("--list", action="store_true", help=f"list the {what} and exit")
    for alias in aliases:
        parser.add_argument(alias, dest="list", action="store_true", help=argparse.SUPPRESS)


def add_timeout(
    parser: argparse.ArgumentParser, default: float | None, help: str, *names: str
) -> None:
    """--timeout: the limit for one native step (a probe's child, one kernel)."""
    parser.add_argument(
        *(names or ("--timeout",)),
        dest="timeout",
        type=argtypes.seconds(*argtypes.TIMEOUT_RANGE),
        default=default,
        metavar="SECONDS",
        help=f"{help}; {argtypes.TIMEOUT_RANGE[0]:g} to {argtypes.TIMEOUT_RANGE[1]:g} seconds",
    )


def add_deadline(
    parser: argparse.ArgumentParser,
    default: float | None,
    help: str,
    aliases: tuple[str, ...] = (),
    high: float = argtypes.DURATION_RANGE[1],
) -> None:
    """--deadline: the limit for the whole run; ``aliases`` are hidden old names."""
    parser.add_argument(
        "--deadline",
        dest="deadline",
        type=argtypes.seconds(argtypes.DURATION_RANGE[0], high),
        default=default,
        metavar="SECONDS",
        help=f"{help}; {argtypes.DURATION_RANGE[0]:g} to {high:g} seconds",
    )
    for alias in aliases:
        parser.add_argument(
            alias,
            dest="deadline",
            type=argtypes.seconds(argtypes.DURATION_RANGE[0], high),
            help=argparse.SUPPRESS,
        )


def add_result_options(
    parser: argparse.ArgumentParser, markdown: bool = True, redact: bool = True
) -> None:
    """What a command producing a diagnosis shares (check, trace, kernels)."""
    add_json(parser)
    if markdown:
        add_markdown(parser)
    if redact:
        add_redact(parser)
    add_verbosity(parser)
    add_fail_on(parser)
    add_color(parser)


def usage_error(prog: str, message: str) -> int:
    """One line on stderr, exit status 2 (argparse's own errors look the same)."""
    print(f"{prog}: error: {message} (see {prog} --help)", file=sys.stderr)
    return 2


def write_json(data: object, destination: str, command: str) -> int:
    """A JSON result (a listing, an explanation, a validation, a diff) to a file or '-',
    through the safe writer; 0, or 2 with one line on stderr when it cannot be written."""
    import json

    from vkdoctor.report.io import write_text

    try:
        write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", destination)
    except OSError as exc:
        print(
            f"vkdoctor {command}: cannot write {destination}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 2
    return 0


def add_require(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--require",
        action="append",
        default=[],
        metavar="EXPR",
        help="exit 1 unless some device meets every EXPR (repeatable; also VKDOCTOR_REQUIRE, "
        "';'-separated), e.g. gpu, api>=1.3, memory>=8GiB, vendor=nvidia, extension=VK_KHR_...; "
        "devices>=8: at least 8 devices meet the other EXPRs",
    )


def add_check_requirements(parser: argparse.ArgumentParser) -> None:
    """check's options: --require, --device-select, --github (vkdoctor.require reads them)."""
    add_require(parser)
    parser.add_argument(
        "--device-select",
        nargs="?",
        const="",
        default=None,
        metavar="EXPR",
        help="print 'INDEX UUID NAME' of the best device meeting EXPR and every --require "
        "(discrete > integrated > virtual > CPU, then memory); the rest goes to stderr",
    )
    parser.add_argument(
        "--github",
        action="store_true",
        default=None,
        help="GitHub Actions output: ::error/::warning annotations and the Markdown report in "
        "$GITHUB_STEP_SUMMARY (automatic when GITHUB_ACTIONS=true)",
    )

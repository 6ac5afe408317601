"""Remedy commands that are safe to paste into a shell.

Every command vkdoctor prints is built here from its words (``shlex.join``), so a path or value
with spaces, quotes, ``$``, ``;`` or a newline stays one word and never runs as code.  A command
may end in ``  # comment`` for the reader; comments are flattened to one line, because a newline
would end the comment and turn the rest into a command.  ``split_comment`` is the inverse the
remedy rules use: it finds the comment outside any quoting, so a quoted ``#`` stays in the word.
"""

from __future__ import annotations

import re
import shlex

_LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f]+")


def one_line(text: str) -> str:
    """``text`` with control characters (newlines first of all) folded to one space."""
    return _LINE_BREAKS.sub(" ", text).strip()


def command(*words: str, comment: str = "") -> str:
    """``words`` as one shell command, each word quoted where it needs it."""
    text = shlex.join(words)
    note = one_line(comment)
    return f"{text}  # {note}" if note else text


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def export(variable: str, value: str, *, comment: str = "") -> str:
    """``export VARIABLE=value`` with the value quoted.  A name sh cannot hold (an environment
    may carry any) is quoted whole, so the shell refuses it instead of running part of it."""
    if _NAME.fullmatch(variable):
        text = f"export {variable}={shlex.quote(value)}"
    else:
        text = shlex.join(("export", f"{variable}={value}"))
    note = one_line(comment)
    return f"{text}  # {note}" if note else text


def unset(variable: str) -> str:
    return shlex.join(("unset", variable))


def split_comment(line: str) -> tuple[str, str]:
    """(the command, its trailing comment without ``#``) of one remedy line.

    A ``#`` starts a comment only at the start of a word outside quotes, as in sh; one inside a
    quoted path is part of the path.
    """
    quote = ""
    escaped = False
    previous = " "
    for index, char in enumerate(line):
        if escaped:
            escaped = False
        elif quote == "'":
            if char == "'":
                quote = ""
        elif quote == '"':
            if char == "\\":
                escaped = True
            elif char == '"':
                quote = ""
        elif char == "\\":
            escaped = True
        elif char in "'\"":
            quote = char
        elif char == "#" and previous in " \t":
            return line[:index].rstrip(), line[index + 1 :].strip()
        previous = char
    return line.rstrip(), ""

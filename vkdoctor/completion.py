"""``vkdoctor completion bash|zsh|fish``: shell completion generated from the argument parser.

The parser is walked once (``command_tree``): every subcommand path, its visible options (hidden
aliases such as ``--no-color`` are left out, as in --help), which options take a value, their
choices, and whether a value or positional is a file.  The three scripts are printed from that
tree, so a new option or subcommand completes without anyone editing a list.  zsh uses bash's
completion function through ``bashcompinit`` (part of zsh) rather than a second generator.

    source <(vkdoctor completion bash)          # ~/.bashrc
    vkdoctor completion zsh > ~/.zfunc/_vkdoctor  (or: source <(vkdoctor completion zsh))
    vkdoctor completion fish > ~/.config/fish/completions/vkdoctor.fish
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable

from vkdoctor.record import frozen

SHELLS = ("bash", "zsh", "fish")
PROG = "vkdoctor"
# An action may carry the words its values complete to (a tuple, or a callable giving one, so a
# costly list such as every finding code is only built when a script is generated).
COMPLETE_ATTR = "complete_words"


@frozen
class Option:
    flags: tuple[str, ...]
    takes_value: bool
    choices: tuple[str, ...] = ()
    files: bool = False
    help: str = ""
    metavar: str = ""  # what --help calls its value (PATH, SECONDS)


@frozen
class Command:
    path: tuple[str, ...]  # () for vkdoctor itself, ("report", "show") for a subcommand
    help: str
    options: tuple[Option, ...]
    subcommands: tuple[tuple[str, str], ...]  # (name, help)
    words: tuple[str, ...] = ()  # what its positionals complete to
    files: bool = False  # its positionals are files

    @property
    def key(self) -> str:
        return " ".join(self.path)


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    parser: argparse.ArgumentParser = commands.add_parser(
        "completion",
        help="print a shell completion script (bash, zsh or fish)",
        description="Print a completion script generated from vkdoctor's own argument parser. "
        "bash: source <(vkdoctor completion bash); zsh: source <(vkdoctor completion zsh); "
        "fish: vkdoctor completion fish > ~/.config/fish/completions/vkdoctor.fish",
    )
    parser.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    return parser


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    sys.stdout.write(script(args.shell, parser))
    return 0


def script(shell: str, parser: argparse.ArgumentParser) -> str:
    tree = command_tree(parser)
    return {"bash": bash, "zsh": zsh, "fish": fish}[shell](tree)


# -- the parser walk --


def _is_file(action: argparse.Action) -> bool:
    metavar = str(action.metavar or action.dest or "").upper()
    return any(word in metavar for word in ("PATH", "FILE", ".JSON", "TRACE", "REPORT"))


def _words(action: argparse.Action) -> tuple[str, ...]:
    given = getattr(action, COMPLETE_ATTR, None)
    if callable(given):
        given = given()
    if given:
        return tuple(str(w) for w in given)
    return tuple(str(c) for c in action.choices or ())


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:  # type: ignore[type-arg]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def command_tree(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[Command]:
    """Every command reachable from ``parser``, depth first, ``path`` () first."""
    options: list[Option] = []
    words: list[str] = []
    files = False
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            continue
        if not action.option_strings:
            if action.help is not argparse.SUPPRESS:
                words.extend(_words(action))
                files = files or _is_file(action)
            continue
        if action.help is argparse.SUPPRESS:
            continue  # hidden aliases of old spellings
        options.append(
            Option(
                flags=tuple(action.option_strings),
                takes_value=action.nargs != 0,
                choices=_words(action),
                files=action.nargs != 0 and not action.choices and _is_file(action),
                help=str(action.help or "").replace("%(default)s", str(action.default)),
                metavar=str(action.metavar or action.dest.upper()) if action.nargs != 0 else "",
            )
        )
    sub = _subparsers(parser)
    helps = {a.dest: str(a.help or "") for a in sub._choices_actions} if sub else {}
    children = [(name, helps.get(name, "")) for name in (sub.choices if sub else {})]
    own = Command(
        path=path,
        help=str(parser.description or ""),
        options=tuple(options),
        subcommands=tuple(children),
        words=tuple(words),
        files=files,
    )
    tree = [own]
    if sub:
        for name, child in sub.choices.items():
            tree.extend(command_tree(child, (*path, name)))
    return tree


# -- bash (and zsh through bashcompinit) --


def _case(entries: Iterable[tuple[str, str]], indent: str = "        ") -> str:
    return "\n".join(f'{indent}"{key}") echo {_quote(value)} ;;' for key, value in entries)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _flags(command: Command, keep: Callable[[Option], bool]) -> str:
    return " ".join(flag for option in command.options if keep(option) for flag in option.flags)


def bash(tree: list[Command]) -> str:
    subs = _case((c.key, " ".join(n for n, _ in c.subcommands)) for c in tree)
    opts = _case((c.key, _flags(c, lambda o: True)) for c in tree)
    valued = _case((c.key, _flags(c, lambda o: o.takes_value)) for c in tree)
    files = _case((c.key, _flags(c, lambda o: o.files)) for c in tree)
    choices = _case(
        (f"{c.key}|{flag}", " ".join(o.choices))
        for c in tree
        for o in c.options
        if o.choices
        for flag in o.flags
    )
    positional = _case((c.key, " ".join(c.words)) for c in tree if c.words)
    # case patterns of the commands whose positionals are files (report show REPORT.json)
    file_paths = " | ".join(f'"{c.key}"' for c in tree if c.files) or '"-none-"'
    return f"""# bash completion for {PROG}, generated from its argument parser
# ({PROG} completion bash); source it from ~/.bashrc: source <({PROG} completion bash)
_{PROG}_subs() {{
    case "$1" in
{subs}
    esac
}}
_{PROG}_opts() {{
    case "$1" in
{opts}
    esac
}}
_{PROG}_valued() {{
    case "$1" in
{valued}
    esac
}}
_{PROG}_file_opts() {{
    case "$1" in
{files}
    esac
}}
_{PROG}_choices() {{
    case "$1" in
{choices}
    esac
}}
_{PROG}_positional() {{
    case "$1" in
{positional}
    esac
}}
_{PROG}_has() {{  # is word $2 in the list $1?
    local w
    for w in $1; do [ "$w" = "$2" ] && return 0; done
    return 1
}}
_{PROG}() {{
    local cur prev path word i skip=0
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    path=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${{COMP_WORDS[i]}}"
        if [ "$skip" = 1 ]; then skip=0; continue; fi
        [ "$word" = "--" ] && {{ COMPREPLY=(); return 0; }}  # a traced program's own words
        case "$word" in
            --*=*) ;;
            -*) _{PROG}_has "$(_{PROG}_valued "$path")" "$word" && skip=1 ;;
            *) _{PROG}_has "$(_{PROG}_subs "$path")" "$word" && path="${{path:+$path }}$word" ;;
        esac
    done
    if _{PROG}_has "$(_{PROG}_valued "$path")" "$prev"; then
        local choices
        choices="$(_{PROG}_choices "$path|$prev")"
        if [ -n "$choices" ]; then
            mapfile -t COMPREPLY < <(compgen -W "$choices" -- "$cur")
        elif _{PROG}_has "$(_{PROG}_file_opts "$path")" "$prev"; then
            mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        else
            COMPREPLY=()
        fi
        return 0
    fi
    case "$cur" in
        -*) mapfile -t COMPREPLY < <(compgen -W "$(_{PROG}_opts "$path")" -- "$cur") ;;
        *)
            mapfile -t COMPREPLY < <(compgen -W "$(_{PROG}_subs "$path") $(_{PROG}_positional "$path")" -- "$cur")
            case "$path" in {file_paths}) mapfile -t -O "${{#COMPREPLY[@]}}" COMPREPLY < <(compgen -f -- "$cur") ;; esac
            ;;
    esac
    return 0
}}
complete -o default -o bashdefault -F _{PROG} {PROG} 2>/dev/null || complete -F _{PROG} {PROG}
"""


def zsh(tree: list[Command]) -> str:
    return f"""#compdef {PROG}
# zsh completion for {PROG}, generated from its argument parser ({PROG} completion zsh):
# the bash completion function through zsh's own bashcompinit.
autoload -U +X compinit && {{ (( $+functions[compdef] )) || compinit; }}
autoload -U +X bashcompinit && bashcompinit
{bash(tree)}"""


# -- fish --


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def fish(tree: list[Command]) -> str:
    lines = [
        f"# fish completion for {PROG}, generated from its argument parser ({PROG} completion fish)",
        f"complete -c {PROG} -e",
        f"function __{PROG}_path --description 'the {PROG} subcommand path typed so far'",
        "    set -l words (commandline -opc)",
        "    set -e words[1]",
        "    set -l path",
        "    set -l skip 0",
        "    for word in $words",
        "        if test $skip = 1",
        "            set skip 0",
        "            continue",
        "        end",
        "        if test $word = --",
        "            echo __program__",
        "            return",
        "        end",
        "        set -l key (string join ' ' $path)",
        "        switch $word",
        "            case '-*'",
        f"                contains -- $word (__{PROG}_valued $key); and set skip 1",
        "            case '*'",
        f"                contains -- $word (__{PROG}_subs $key); and set -a path $word",
        "        end",
        "    end",
        "    string join ' ' $path",
        "end",
        f"function __{PROG}_at --description 'is the subcommand path typed so far $argv[1]?'",
        f"    set -l path (__{PROG}_path)",
        '    test "$path" = "$argv[1]"',
        "end",
    ]
    for name, keep in (("subs", None), ("valued", True)):
        lines.append(f"function __{PROG}_{name}")
        lines.append('    switch "$argv"')
        for command in tree:
            if keep is None:
                values = [n for n, _ in command.subcommands]
            else:
                values = [f for o in command.options if o.takes_value for f in o.flags]
            if values:
                lines.append(f"        case {_fish_quote(command.key)}")
                lines.append("            printf '%s\\n' " + " ".join(map(_fish_quote, values)))
        lines.append("    end")
        lines.append("end")
    for command in tree:
        condition = f"__{PROG}_at {_fish_quote(command.key)}"
        for name, text in command.subcommands:
            lines.append(
                f"complete -c {PROG} -f -n {_fish_quote(condition)} -a {_fish_quote(name)}"
                f" -d {_fish_quote(_short(text))}"
            )
        if command.words:
            words = " ".join(command.words)
            lines.append(
                f"complete -c {PROG} -f -n {_fish_quote(condition)} -a {_fish_quote(words)}"
            )
        for option in command.options:
            spec = []
            for flag in option.flags:
                if flag.startswith("--"):
                    spec.append(f"-l {flag[2:]}")
                elif len(flag) == 2:
                    spec.append(f"-s {flag[1:]}")
                else:
                    spec.append(f"-o {flag[1:]}")
            if option.takes_value:
                spec.append("-r")
                spec.append("-F" if option.files else "-f")
            if option.choices:
                spec.append(f"-a {_fish_quote(' '.join(option.choices))}")
            lines.append(
                f"complete -c {PROG} -n {_fish_quote(condition)} {' '.join(spec)}"
                f" -d {_fish_quote(_short(option.help))}"
            )
    return "\n".join(lines) + "\n"


def _short(text: str) -> str:
    first = " ".join(text.split()).split("; ")[0]
    return first if len(first) <= 60 else first[:59] + "…"

"""Text and Markdown for ``vkdoctor report summarize`` (a ``fleet.summarize.Summary``).

Text: a count line, then one line per group, greppable (no wrapping, no colour: the output is
read in terminals, logs and job files alike).  Every string from a report passes through
``safe_text.clean_line`` (text) or the Markdown escaper, since the reports come from other
machines.  Host lists are cut at a few names here; the JSON output carries them all.
"""

from __future__ import annotations

from collections.abc import Sequence

from vkdoctor.fleet.summarize import Group, Summary
from vkdoctor.render.markdown import code, escape, table
from vkdoctor.render.safe_text import clean_line

HOSTS_SHOWN = 10


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _hosts(hosts: Sequence[str], shown: int = HOSTS_SHOWN) -> str:
    more = f" and {len(hosts) - shown} more" if len(hosts) > shown else ""
    return ", ".join(hosts[:shown]) + more


def _seen(group: Group) -> str:
    if not group.first_seen:
        return "seen at unknown times"
    if group.first_seen == group.last_seen:
        return f"seen {group.first_seen}"
    return f"seen {group.first_seen} to {group.last_seen}"


def headline(summary: Summary) -> str:
    """``12 reports from 12 machines: 9 healthy, 3 with problems (2 signatures); 1 unreadable
    file``."""
    what = "signature" if summary.by == "signature" else f"{summary.by} stack"
    text = (
        f"{_plural(summary.reports, 'report')} from {_plural(summary.machines, 'machine')}: "
        f"{summary.healthy} healthy, {summary.with_problems} with problems "
        f"({_plural(len(summary.groups), what)})"
    )
    if summary.unreadable:
        text += f"; {_plural(len(summary.unreadable), 'unreadable file')}"
    return text


def group_line(group: Group, by: str) -> str:
    """One group on one line, every report string cleaned."""
    machines = _plural(group.machines, "machine")
    hosts = clean_line(_hosts(group.hosts))
    if by == "signature":
        what = clean_line(group.key)
        if group.headline:
            what += f": {clean_line(group.headline)}"
        fix = f" — fix: {clean_line(group.fix)}" if group.fix else ""
        return f"{machines:>12}  {what}{fix} · {_seen(group)} · hosts {hosts}"
    problems = ", ".join(f"{clean_line(label)} ×{count}" for label, count in group.problems)
    state = f"{group.healthy} healthy" + (f", problems: {problems}" if problems else "")
    return f"{machines:>12}  {clean_line(group.key)}: {state} · {_seen(group)} · hosts {hosts}"


def render_text(summary: Summary) -> str:
    lines = [headline(summary)]
    lines += [group_line(group, summary.by) for group in summary.groups]
    if summary.unreadable:
        lines.append("unreadable files (not counted above):")
        lines += [f"  {clean_line(u.path)}: {clean_line(u.reason)}" for u in summary.unreadable]
    return "\n".join(lines) + "\n"


def render_markdown(summary: Summary) -> str:
    lines = ["## vkdoctor fleet summary", "", escape(headline(summary)), ""]
    if summary.by == "signature" and summary.groups:
        rows = [
            [
                str(g.machines),
                code(g.code),
                code(g.culprit) if g.culprit else "",
                escape(g.headline),
                code(g.fix) if g.fix else "",
                escape(g.first_seen),
                escape(g.last_seen),
                escape(_hosts(g.hosts, 20)),
            ]
            for g in summary.groups
        ]
        header = ["Machines", "Code", "Culprit", "What", "Fix", "First seen", "Last seen", "Hosts"]
        lines += table(header, rows, "r")
    elif summary.groups:
        rows = [
            [
                str(g.machines),
                escape(g.key),
                str(g.healthy),
                escape(", ".join(f"{label} ×{count}" for label, count in g.problems)),
                escape(g.first_seen),
                escape(g.last_seen),
                escape(_hosts(g.hosts, 20)),
            ]
            for g in summary.groups
        ]
        header = ["Machines", summary.by.capitalize(), "Healthy", "Problems", "First seen"]
        lines += table([*header, "Last seen", "Hosts"], rows, "r")
    if summary.unreadable:
        lines += ["", "### Unreadable files", ""]
        lines += [f"- {code(u.path)}: {escape(u.reason)}" for u in summary.unreadable]
    return "\n".join(lines) + "\n"

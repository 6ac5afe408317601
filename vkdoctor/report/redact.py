"""Privacy for reports: secrets are never recorded; identity is redacted on request.

Two layers, with different guarantees:

- Secrets (always on, at recording time).  Values of variables whose *name* looks secret
  (TOKEN, KEY, SECRET, PASSWORD, credentials...) are never recorded, and credentials embedded in
  values (``https://user:pw@host``, ``?token=...``, well-known token shapes) are masked.  The same
  scrub runs over a whole report before it is printed or written, as a safety net for text that
  reaches a report by another road (a loader log line, a finding's evidence).
- Identity (``--redact``, the default for the Markdown export).  The home directory, the user
  name, the host name and machine ids (``/etc/machine-id``, the boot id, GPU UUIDs) are replaced
  by placeholders, so a report can be pasted into a public ticket.  The identity comes from the
  machine (when redacting a fresh run) and from the report itself (when redacting a stored one),
  because a stored report may come from another machine.

Headless: no rich/textual imports; pure functions over dicts and strings.
"""

from __future__ import annotations

import functools
import os
import re
import socket
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from vkdoctor.engine.env import Env
from vkdoctor.record import frozen
from vkdoctor.report import codec
from vkdoctor.report.model import Report

REDACTED = "<redacted>"
HOME_PLACEHOLDER = "~"
USER_PLACEHOLDER = "<user>"
HOST_PLACEHOLDER = "<host>"
ID_PLACEHOLDER = "<machine-id>"

# Name fragments that mark a variable as secret.  Substrings for long, unambiguous words; whole
# name parts (split on "_") for short ones, so KEYBOARD_LAYOUT or PASSTHROUGH stay readable.
_SECRET_SUBSTRINGS = (
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "CREDENTIAL",
    "PRIVATE",
    "APIKEY",
    "COOKIE",
    "SESSIONID",
)
_SECRET_PARTS = frozenset({"KEY", "KEYS", "AUTH", "PASS", "PW", "PAT", "SIG", "SIGNATURE"})
# Exact secret values shorter than this are not searched for in free text: "1" or "true" would
# mask half the report while protecting nothing; nor are settings words (AUTH_MODE=disabled).
_MIN_SECRET_VALUE = 6
_NOT_SECRETS = frozenset(
    {
        "enabled",
        "disabled",
        "required",
        "optional",
        "default",
        "false",
        "true",
        "none",
        "null",
        "unset",
        "always",
        "never",
    }
)

_URL_CREDENTIALS = re.compile(
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/\s@'\"<>]+)@"
)
# A key=value or key: value pair inside free text.  The key must stand alone (start of text,
# after a space, quote, bracket, "?", "&", ";" or ","), never be part of a path: ".../usr/bin/passwd:
# cannot dynamically load" is a loader message, not a password.  Whether the key names a
# credential is decided by ``_credential_key``, not by the pattern.
_KEY_VALUE = re.compile(
    r"(?<![\w./~:@-])(?P<key>-{0,2}[A-Za-z][A-Za-z0-9_.-]*)(?P<sep>=|:(?!/)[ \t]*)"
    r"(?P<value>[^\s&;,'\"<>]+)"
)
_CREDENTIAL_WORDS = (
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "credential",
    "privatekey",
    "sessionid",
    "cookie",
)
_CREDENTIAL_PARTS = frozenset(
    {"pass", "pwd", "pw", "auth", "key", "sig", "signature", "authorization"}
)


def _credential_key(key: str) -> bool:
    """Whether a key or option (``--password``, ``api_key``, ``X-Auth``) names a credential;
    ``author`` or ``keyboard`` do not."""
    lower = key.lower().lstrip("-")
    compact = re.sub(r"[^a-z0-9]", "", lower)
    if any(word in compact for word in _CREDENTIAL_WORDS):
        return True
    return any(part in _CREDENTIAL_PARTS for part in re.split(r"[^a-z0-9]+", lower))


def _looks_like_prose(value: str) -> bool:
    # "token: unexpected" is an error message; secrets have digits, capitals or symbols.  An
    # auth scheme ("Authorization: Bearer <redacted>") is kept: the token after it is masked.
    return (value.isalpha() and value.islower()) or value in ("Bearer", "Basic")


# "Basic configuration" is prose; a credential has a digit somewhere.
_BEARER = re.compile(
    r"\b(?P<scheme>Bearer|Basic)\s+(?=[A-Za-z._~+/=-]*[0-9])[A-Za-z0-9._~+/=-]{12,}"
)
# Shapes of widely used tokens: GitHub, GitLab, Slack, AWS access keys, OpenAI-style keys.
_TOKEN_SHAPES = re.compile(
    r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_-]{20,}|"
    r"xox[abprs]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16}|sk-[A-Za-z0-9_-]{20,})\b"
)


@functools.lru_cache(maxsize=4096)  # called for every key of every report dict
def looks_secret_name(name: str) -> bool:
    """Whether a variable (or key) name announces a secret value."""
    upper = name.upper()
    if any(fragment in upper for fragment in _SECRET_SUBSTRINGS):
        return True
    return any(part in _SECRET_PARTS for part in re.split(r"[^A-Z0-9]+", upper))


def secret_values(environ: Mapping[str, str]) -> tuple[str, ...]:
    """Exact secrets to search for, longest first (so a secret containing another is replaced
    whole): values of secret-named variables, and passwords embedded in URLs of any variable,
    because path-list variables get split on ":" and the password then travels alone."""
    values = {v for k, v in environ.items() if looks_secret_name(k)}
    for value in environ.values():
        for match in _URL_CREDENTIALS.finditer(value):
            user, _, password = match["userinfo"].partition(":")
            values.add(password or user)
    kept = {v for v in values if len(v) >= _MIN_SECRET_VALUE and v.lower() not in _NOT_SECRETS}
    return tuple(sorted(kept, key=lambda v: (-len(v), v)))


def scrub_text(text: str, values: Iterable[str] = ()) -> str:
    """Mask credentials inside free text; ``values`` are exact secrets known to be in the
    environment."""
    for value in values:
        if value in text:
            text = text.replace(value, REDACTED)
    text = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)
    text = _BEARER.sub(lambda m: f"{m['scheme']} {REDACTED}", text)
    text = _KEY_VALUE.sub(_mask_assignment, text)
    return _TOKEN_SHAPES.sub(REDACTED, text)


def _mask_assignment(match: re.Match[str]) -> str:
    key, sep, value = match["key"], match["sep"], match["value"]
    if value == REDACTED or not _credential_key(key):
        return match[0]
    if sep != "=" and _looks_like_prose(value):
        return match[0]
    return f"{key}{sep}{REDACTED}"


def record_value(name: str, value: str) -> str:
    """The value of a variable as it may be recorded in a report."""
    if looks_secret_name(name):
        return REDACTED
    return scrub_text(value)


def _walk(data: Any, text: Callable[[str], str], on_dict: Callable[[dict[str, Any]], None]) -> Any:
    if isinstance(data, str):
        return text(data)
    if isinstance(data, list | tuple):
        return [_walk(item, text, on_dict) for item in data]
    if isinstance(data, Mapping):
        out = {text(str(k)): _walk(v, text, on_dict) for k, v in data.items()}
        on_dict(out)
        return out
    return data


def _mask_named_values(node: dict[str, Any]) -> None:
    # {"NAME": "value"} maps of variables, and {"variable": NAME, "value": ...} evidence records.
    for key in list(node):
        if looks_secret_name(key) and isinstance(node[key], str) and node[key] != REDACTED:
            node[key] = REDACTED
    name = node.get("variable", node.get("name"))
    if isinstance(name, str) and looks_secret_name(name) and isinstance(node.get("value"), str):
        node["value"] = REDACTED


def _scrubber(environ: Mapping[str, str] | None) -> Callable[[str], str]:
    values = secret_values(os.environ if environ is None else environ)
    # Reports of hostile machines repeat the same strings (keys, remedies, commands) hundreds of
    # thousands of times: scrub each distinct string once.
    seen: dict[str, str] = {}

    def text(value: str) -> str:
        done = seen.get(value)
        if done is None:
            done = seen[value] = scrub_text(value, values)
        return done

    return text


def scrub_secrets(data: Any, environ: Mapping[str, str] | None = None) -> Any:
    """A copy of a report dict (or any JSON value) with every secret masked."""
    return _walk(data, _scrubber(environ), _mask_named_values)


# --------------------------------------------------------------------------------------------
# Identity redaction
# --------------------------------------------------------------------------------------------

# Names that identify nobody: system accounts and the hostnames installers give every machine.
_SYSTEM_USERS = frozenset({"root", "nobody", "daemon", "user", "ubuntu", "debian", "admin"})
_GENERIC_HOSTS = frozenset(
    {
        "localhost",
        "localhost.localdomain",
        "debian",
        "ubuntu",
        "fedora",
        "archlinux",
        "raspberrypi",
        "linux",
        "host",
        "runner",
        "ci",
    }
)
_MACHINE_ID_FILES = (
    "/etc/machine-id",
    "/var/lib/dbus/machine-id",
    "/proc/sys/kernel/random/boot_id",
)
# Keys whose values identify one physical machine or GPU.  driverUUID and pipelineCacheUUID are
# left alone: they name a driver build, which is what a diff between machines needs.
_ID_KEYS = re.compile(
    r"^(?:device_?uuid|uuid|gpu_uuid|nvidia_uuid|serial(?:_number)?|machine_id|boot_id)$",
    re.IGNORECASE,
)
_GPU_UUID = re.compile(r"\b(GPU|MIG)-[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}\b")
_OTHER_HOMES = re.compile(r"(?P<base>/(?:home|var/home|Users))/(?P<name>[^/\s'\"<>:]+)")


def _id_values(node: Any) -> list[str]:
    """Every UUID-shaped value under an id key (``_ID_KEYS``) anywhere in a report dict."""
    found: list[str] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            for key, value in item.items():
                if isinstance(value, str):
                    if _ID_KEYS.match(str(key)) and len(_uuid_forms(value)) == 2:
                        found.append(value)
                elif isinstance(value, (Mapping, list, tuple)):
                    stack.append(value)
        elif isinstance(item, (list, tuple)):
            stack.extend(v for v in item if isinstance(v, (Mapping, list, tuple)))
    return found


def _uuid_forms(hex_id: str) -> tuple[str, ...]:
    plain = hex_id.replace("-", "").lower()
    if not re.fullmatch(r"[0-9a-f]{32}", plain):
        return (hex_id,) if hex_id else ()
    dashed = f"{plain[:8]}-{plain[8:12]}-{plain[12:16]}-{plain[16:20]}-{plain[20:]}"
    return (plain, dashed)


@frozen
class Identity:
    """What identifies a machine and its user inside a report."""

    homes: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    machine_ids: tuple[str, ...] = ()

    @classmethod
    def of_machine(cls, env: Env | None = None) -> Identity:
        env = env or Env.current()
        homes = [env.get_nonempty("HOME") or "", os.path.expanduser("~")]
        users = [env.get_nonempty(n) or "" for n in ("USER", "LOGNAME", "SUDO_USER")]
        try:
            import pwd

            entry = pwd.getpwuid(env.euid)
            users.append(entry.pw_name)
            homes.append(entry.pw_dir)
        except (KeyError, ImportError):
            pass
        hosts = [socket.gethostname(), os.uname().nodename]
        ids: list[str] = []
        for path in _MACHINE_ID_FILES:
            try:
                with open(env.path(path), encoding="ascii", errors="replace") as handle:
                    ids.append(handle.read(128).strip())
            except OSError:
                continue
        return cls.build(homes, users, hosts, ids)

    @classmethod
    def of_report(cls, data: Mapping[str, Any]) -> Identity:
        """The identity a stored report reveals about its own machine."""
        homes: list[str] = []
        users: list[str] = []
        hosts: list[str] = []
        environment = (
            data.get("environment") if isinstance(data.get("environment"), Mapping) else {}
        )
        identity = environment.get("identity") if isinstance(environment, Mapping) else None
        if isinstance(identity, Mapping) and isinstance(identity.get("user"), str):
            users.append(identity["user"])
        host = environment.get("hostname") if isinstance(environment, Mapping) else None
        if isinstance(host, str):
            hosts.append(host)
        for probe in data.get("probes") or ():
            if not isinstance(probe, Mapping):
                continue
            variables = (probe.get("facts") or {}).get("variables")
            if isinstance(variables, Mapping):
                homes.append(str(variables.get("HOME") or ""))
                users += [str(variables.get(n) or "") for n in ("USER", "LOGNAME", "SUDO_USER")]
        # A GPU's UUID stored under an id key (a device record's device_uuid) is replaced in
        # every other place too: NVIDIA's deviceUUID is the GPU UUID that the environment's
        # /proc/driver/nvidia facts and `nvidia-smi -L` print, in other spellings.
        return cls.build(homes, users, hosts, _id_values(data))

    @classmethod
    def build(
        cls,
        homes: Iterable[str],
        users: Iterable[str],
        hosts: Iterable[str],
        machine_ids: Iterable[str],
    ) -> Identity:
        # "/" as a home (daemons) would turn every path into "~..."; placeholders are not names.
        clean_homes = {
            h.rstrip("/") for h in homes if h and h.rstrip("/") and not h.startswith("<")
        }
        clean_users = {u for u in users if len(u) >= 2 and u not in _SYSTEM_USERS}
        clean_hosts: set[str] = set()
        for host in hosts:
            for form in (host, host.split(".")[0]):
                if len(form) >= 3 and form.lower() not in _GENERIC_HOSTS:
                    clean_hosts.add(form)
        ids = {form for i in machine_ids for form in _uuid_forms(i.strip()) if len(form) >= 8}

        def longest_first(items: set[str]) -> tuple[str, ...]:
            return tuple(sorted(items, key=lambda s: (-len(s), s)))

        return cls(
            longest_first(clean_homes),
            longest_first(clean_users),
            longest_first(clean_hosts),
            longest_first(ids),
        )

    def merge(self, other: Identity) -> Identity:
        return Identity.build(
            self.homes + other.homes,
            self.users + other.users,
            self.hosts + other.hosts,
            self.machine_ids + other.machine_ids,
        )


class Redactor:
    """Applies an Identity to text; compiled once per report."""

    def __init__(self, identity: Identity) -> None:
        self.identity = identity
        # A home is a whole path prefix: "/root" must not match inside "/srv/root/x".
        self._homes = [
            re.compile(r"(?<![\w.~/-])" + re.escape(h) + r"(?=/|$|[\s:;,'\")\]])")
            for h in identity.homes
        ]
        # A user name is replaced as a path component or as a whole value, not inside words.
        self._users = [
            re.compile(r"(?<=/)" + re.escape(u) + r"(?=/|$|[\s:;,'\")\]])") for u in identity.users
        ]
        self._hosts = [
            re.compile(r"(?<![A-Za-z0-9.-])" + re.escape(h) + r"(?![A-Za-z0-9-]|\.[A-Za-z0-9])")
            for h in identity.hosts
        ]
        self._ids = [re.compile(re.escape(i), re.IGNORECASE) for i in identity.machine_ids]

    def text(self, text: str) -> str:
        if text in self.identity.users:
            return USER_PLACEHOLDER
        if text in self.identity.hosts:
            return HOST_PLACEHOLDER
        for pattern in self._homes:
            text = pattern.sub(HOME_PLACEHOLDER, text)
        text = _OTHER_HOMES.sub(
            lambda m: m[0] if m["name"] == USER_PLACEHOLDER else f"{m['base']}/{USER_PLACEHOLDER}",
            text,
        )
        for pattern in self._users:
            text = pattern.sub(USER_PLACEHOLDER, text)
        for pattern in self._ids:
            text = pattern.sub(ID_PLACEHOLDER, text)
        text = _GPU_UUID.sub(lambda m: f"{m[1]}-{ID_PLACEHOLDER}", text)
        for pattern in self._hosts:
            text = pattern.sub(HOST_PLACEHOLDER, text)
        return text

    def node(self, node: dict[str, Any]) -> None:
        for key in list(node):
            if _ID_KEYS.match(key) and node[key] not in (None, "", ID_PLACEHOLDER):
                node[key] = ID_PLACEHOLDER


REDACTION_NOTE = {
    "applied": True,
    "placeholders": {
        HOME_PLACEHOLDER: "home directory",
        USER_PLACEHOLDER: "user name",
        HOST_PLACEHOLDER: "host name",
        ID_PLACEHOLDER: "machine or GPU id",
        REDACTED: "secret",
    },
}


def redact_dict(data: Mapping[str, Any], identity: Identity) -> dict[str, Any]:
    """A redacted copy of a report dict.  Idempotent: placeholders match no rule."""
    redactor = Redactor(identity.merge(Identity.of_report(data)))
    out: dict[str, Any] = _walk(data, redactor.text, redactor.node)
    environment = out.get("environment")
    if isinstance(environment, dict):
        environment["redaction"] = REDACTION_NOTE
    return out


def is_redacted(data: Mapping[str, Any] | Report) -> bool:
    environment = data.environment if isinstance(data, Report) else data.get("environment")
    return isinstance(environment, Mapping) and bool(
        (environment.get("redaction") or {}).get("applied")
    )


def scrub_report(report: Report, environ: Mapping[str, str] | None = None) -> Report:
    """The report with secrets masked (always applied before a report leaves vkdoctor)."""
    return codec.map_strings(report, _scrubber(environ), _mask_named_values)


def redact_report(report: Report, identity: Identity | None = None) -> Report:
    """The report with identity redacted (and secrets masked)."""
    data = scrub_secrets(report.to_dict())
    return Report.from_dict(redact_dict(data, identity or Identity.of_machine()))

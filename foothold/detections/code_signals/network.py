"""Network signals: new hosts, secrets sent out, sockets to literal addresses."""

from __future__ import annotations

import re
from collections.abc import Iterable

from foothold.detections.code_changes import CodeChange
from foothold.detections.code_signals.rules import CodeRules

_URL_HOST = re.compile(r"(?:https?|wss?|ftp)://(?:[^@/\s'\"<>]+@)?([A-Za-z0-9.\-]+|\[[0-9a-fA-F:]+\])", re.IGNORECASE)
_IPV4 = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?![\d.])")
_QUOTED_HOST = re.compile(r"""["']((?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.)+[a-z]{2,24})["']""", re.IGNORECASE)


def _hosts(lines: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for line in lines:
        found.update(h.lower().strip("[]") for h in _URL_HOST.findall(line))
        found.update(ip for ip in _IPV4.findall(line) if all(int(p) < 256 for p in ip.split(".")))
    return found


def _new_hosts(added: list[str], removed: list[str], rules: CodeRules) -> list[str]:
    before = _hosts(removed)
    return sorted(h for h in _hosts(added) - before if not rules.benign_hosts.match(h) and not _is_version(h))


def _is_version(host: str) -> bool:
    return bool(re.fullmatch(r"\d+(?:\.\d+){1,3}", host)) and not _IPV4.fullmatch(host)


# A new host is found in an added line by one of these.
NEW_HOST_SCREEN = (_URL_HOST, _IPV4)


def new_host(added: list[str], removed: list[str], _change: CodeChange, rules: CodeRules) -> str | None:
    hosts = _new_hosts(added, removed, rules)
    return f"new host(s): {', '.join(hosts[:5])}" if hosts else None


# Environment variables named as secrets; a client sends its own one key, a harvester sends several.
_SECRET_ENV = re.compile(
    r"(?:process\.env|os\.environ|getenv|Getenv|ENV|env::var|System\.getenv|\$\{?)\W{0,4}"
    r"(\w*(?:TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_KEY|CREDENTIAL)\w*)"
)


_ENCODES = re.compile(r"base64_encode|btoa\(|b64encode|toString\(\s*['\"]base64|Base64\.\w*encode|bin2hex", re.I)
_AUTH_HEADER = re.compile(r"Authorization|Basic\s|Bearer\s|auth\s*=\s*\(", re.I)


# Nothing is sent unless an added line sends or looks a name up.
SECRET_EGRESS_SCREEN = ("net_sends", "dns_lookups")


def secret_egress(added: list[str], removed: list[str], change: CodeChange, rules: CodeRules) -> str | None:
    """Secrets leave when a change sends something out and it gathers what no client needs to send: the whole
    environment, a credential file, key material (a private key, a wallet seed); or when it sends to a drop-box
    service; or when it puts an environment secret into a DNS name. One API key in its own service's auth
    header is how clients work, and is not this signal."""
    text = "\n".join(added)
    lists = rules.lists
    sends = [line for line in added if lists["net_sends"].search(line) or lists["dns_lookups"].search(line)]
    if not sends:
        return None
    drop_box = lists["drop_boxes"].search(text)
    if drop_box:
        return f"sends to {drop_box.group(0)}: {sends[0].strip()}"
    context = change.after if change.after is not None else text  # a key path may sit in the signature
    gathered = lists["bulk_environment"].search(text) or lists["credential_files"].search(context)
    # Key material counts inside the send itself (its statement may run over a few lines: headers, body).
    windows = "\n".join("\n".join(added[i : i + 5]) for i, line in enumerate(added) if line in sends)
    gathered = gathered or lists["key_material"].search(windows)
    if gathered:
        return f"gathers {gathered.group(0)!r} and sends: {sends[0].strip()}"
    named = set(_SECRET_ENV.findall(windows))
    if len(named) >= 2:
        return f"sends {', '.join(sorted(named)[:4])} in one request: {sends[0].strip()}"
    if named and (_IPV4.search(windows) or (_ENCODES.search(windows) and not _AUTH_HEADER.search(windows))):
        return f"sends {next(iter(named))} to a bare address or encoded in a request: {sends[0].strip()}"
    lookups = [line for line in added if lists["dns_lookups"].search(line)]
    if lookups and lists["secret_sources"].search(text):
        return f"puts environment data into a DNS lookup: {lookups[0].strip()}"
    return None


_IP_TUPLE = re.compile(r"\{\s*(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})\s*\}")
_DGRAM_PROBE = re.compile(r"SOCK_DGRAM[\s\S]*getsockname|getsockname[\s\S]*SOCK_DGRAM")


# No literal socket without an added line that connects one.
LITERAL_SOCKET_SCREEN = ("socket_connect",)


def literal_socket(added: list[str], removed: list[str], _change: CodeChange, rules: CodeRules) -> str | None:
    connects = [line for line in added if rules.lists["socket_connect"].search(line)]
    if not connects or _DGRAM_PROBE.search("\n".join(added)):
        return None  # a UDP "connect" to learn the local address sends nothing
    literal = [h for h in _new_hosts(added, removed, rules) if _IPV4.fullmatch(h)]
    literal += [".".join(m) for line in connects for m in _IP_TUPLE.findall(line)]
    literal += [
        h
        for line in connects
        for h in _QUOTED_HOST.findall(line) + _IPV4.findall(line)
        if not rules.benign_hosts.match(h.lower()) and not _is_version(h)
    ]
    if literal:
        return f"connects to {literal[0]}: {connects[0].strip()}"
    return None

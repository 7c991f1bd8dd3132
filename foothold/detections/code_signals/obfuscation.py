"""Text hidden from a reader: encoded literals, escapes, characters as numbers, names cut into pieces."""

from __future__ import annotations

import base64
import re

from foothold.detections.code_changes import CodeChange
from foothold.detections.code_signals.rules import CodeRules
from foothold.detections.code_signals.screen import AcrossLines

_B64_LITERAL = re.compile(r"""["'`]([A-Za-z0-9+/]{160,}={0,2})["'`]""")
_HEX_LITERAL = re.compile(r"""["'`]((?:[0-9a-fA-F]{2}){100,})["'`]""")
_ESCAPES = re.compile(r"(?:\\x[0-9a-fA-F]{2}){16,}|(?:\\u[0-9a-fA-F]{4}){12,}")
_CHR_CHAIN = re.compile(r"(?:\bchr\(\s*\d+\s*\)\s*\+\s*){3,}|(?:String\.fromCharCode\([^)]{20,}\))")
# A name cut into pieces so no search finds it: "a"."s"."s"."e"."r"."t", "".join(["cu", "rl", ...]),
# __import__("so"[::-1]), getattr(m, "sys" + "tem"), str_rot13(...).
_SPLIT_NAME = re.compile(
    r"""(?:["'][^"'\n]{1,4}["']\s*[.+]\s*){3,}["'][^"'\n]{1,4}["']"""
    r"""|join\(\s*\[\s*(?:["'][^"'\n]{1,8}["']\s*,\s*){3,}"""
    r"""|__import__\(\s*["'][^"']+["']\s*\[::-1\]|getattr\([^,]+,\s*["'][^"']*["']\s*\+"""
    r"""|\bstr_rot13\(|\brot13\b"""
    r"""|\[\s*(?:["'][^"'\n]{1,3}["']\s*,\s*){3,}["'][^"'\n]{1,3}["']\s*\]\s*\.(?:reverse|join)"""
    r"""|["'][^"'\n]{8,}["']\s*\.split\(\s*["']{2}\s*\)\s*\.reverse\(\)"""
)


_INT_RUN = re.compile(r"(?:\b(?:0x[0-9a-fA-F]{1,2}|\d{1,3})\b\s*[, ]\s*(?:\(char\)\s*)?){16,}")
# A decoder applied straight to a literal: a constant nobody needed to encode, unless to hide it.
_DECODED_LITERAL = re.compile(
    r"""(?:FromBase64String|b64decode|atob|decode64|base64_decode|DecodeString|fromhex|unhexlify|hex2bin|getDecoder\(\)\.decode)"""
    r"""\(\s*b?["'][A-Za-z0-9+/=]{8,}["'](?:\s*\+\s*["'][A-Za-z0-9+/=]+["'])*"""
)
_CHAR_CASTS = re.compile(r"(?:\(char\)\s*\d+\s*,\s*){4,}")
_LITERAL_ASSIGN = re.compile(r"""^\s*(?:\w+\s+)*\$?([A-Za-z_]\w*)\s*[:=]=?\s*["'`][^"'`]{16,}["'`]""")


def _decodes_to_text(call: str) -> bool:
    """The literal(s) a decoder is given decode to readable text (a URL, a command), not to binary data such as
    an embedded image: hiding text is what encoding a constant is for."""
    encoded = "".join(re.findall(r"""["']([A-Za-z0-9+/=]+)["']""", call))
    for decode in (lambda s: base64.b64decode(s + "=" * (-len(s) % 4)), bytes.fromhex):
        try:
            raw = decode(encoded)
        except ValueError:
            continue
        if raw and sum(32 <= b <= 126 or b in (9, 10, 13) for b in raw) >= 0.9 * len(raw):
            return True
    return False


def _printable_run(line: str, xored: bool) -> bool:
    """A run of byte values that spells printable text, or that the change XORs: text hidden as numbers."""
    m = _INT_RUN.search(line)
    if not m:
        return False
    numbers = [int(n, 0) for n in re.findall(r"0x[0-9a-fA-F]+|\d+", m.group(0))]
    return xored or sum(32 <= n <= 126 for n in numbers) >= 0.8 * len(numbers)


# Every finding below needs an added line one of these matches; the decoded literal is tried on a line joined
# to the next one's stripped text, so its match may run over the line break (AcrossLines).
SCREEN = (
    "decoders",
    AcrossLines(_DECODED_LITERAL),
    _INT_RUN,
    _CHAR_CASTS,
    _B64_LITERAL,
    _HEX_LITERAL,
    _ESCAPES,
    _CHR_CHAIN,
    _SPLIT_NAME,
)


def obfuscated(added: list[str], _removed: list[str], _change: CodeChange, rules: CodeRules) -> str | None:
    """Text hidden from a reader: long encoded literals, escapes, characters as numbers, names split into
    pieces, or a literal that is only readable once decoded and is then used as a destination or command."""
    literals = {m.group(1) for line in added if (m := _LITERAL_ASSIGN.match(line))}
    decoders, uses = rules.lists["decoders"], rules.lists["net_sends"]
    xored = bool(re.search(r"\^\s*\w+", "\n".join(added)))
    for line in added:
        if decoders.search(line) and (uses.search(line) or rules.lists["exec_sinks"].search(line)):
            hidden = [name for name in literals if re.search(rf"\b{re.escape(name)}\b", line)]
            if hidden or re.search(r"""["'`][^"'`]{16,}["'`]""", line):
                return f"decoded literal used as a destination or command: {line.strip()[:200]}"
        joined = line + " ".join(s.strip() for s in added[added.index(line) + 1 : added.index(line) + 2])
        m = _DECODED_LITERAL.search(joined)
        if m and _decodes_to_text(m.group(0)):
            return f"encoded literal decoded in code: {joined.strip()[:200]}"
        if _printable_run(line, xored) or _CHAR_CASTS.search(line):
            return f"characters as numbers: {line.strip()[:120]}"
    for line in added:
        if "data:" in line and ";base64," in line:
            continue  # an inline image or font
        m = _B64_LITERAL.search(line)
        if m and re.search(r"[a-z]", m.group(1)) and re.search(r"[A-Z]", m.group(1)) and re.search(r"\d", m.group(1)):
            return f"base64 literal of {len(m.group(1))} characters"
        m = _HEX_LITERAL.search(line)
        if m:
            return f"hex literal of {len(m.group(1))} characters"
        if _ESCAPES.search(line) or _CHR_CHAIN.search(line) or _SPLIT_NAME.search(line):
            return line.strip()[:200]
    return None

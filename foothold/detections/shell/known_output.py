"""What a command prints, when the command line shows it, so a pipeline carries known content to its next stage.

``echo KEY | tee -a ~/.ssh/authorized_keys`` writes KEY; ``echo ... | base64 -d | sh`` runs the decoded text.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import re

from foothold.detections.shell.syntax import program_name

_ECHO_FLAGS_RE = re.compile(r"-[neE]+")


def stdout_of(argv: list[str], stdin: str | None) -> str | None:
    prog = program_name(argv[0])
    args = argv[1:]
    if prog == "echo":
        while args and _ECHO_FLAGS_RE.fullmatch(args[0]):
            args = args[1:]
        return _unescape(" ".join(args)) + "\n"
    if prog == "printf":
        return _printf(args)
    if prog in ("cat", "tee", "tac") and not [a for a in args if not a.startswith("-")]:
        return stdin
    if prog == "tee":
        return stdin
    if prog in ("base64", "openssl", "basenc") and _decodes(args):
        return b64decode(stdin) if stdin else None  # base64 -d FILE reads a file we cannot see
    if prog == "xxd" and "-r" in args and stdin:
        try:
            return _bytes_to_text(binascii.unhexlify(re.sub(r"\s+", "", stdin)))
        except (binascii.Error, ValueError):
            return None
    if (prog in ("gunzip", "zcat") or (prog == "gzip" and "-d" in args)) and stdin:
        try:
            return _bytes_to_text(gzip.decompress(stdin.encode("latin-1")))
        except Exception:
            return None
    if prog == "rev" and stdin:
        return "\n".join(line[::-1] for line in stdin.split("\n"))
    return None


def b64decode(text: str) -> str | None:
    """Lenient base64: whitespace dropped, padding restored; None when nothing decodes."""
    compact = re.sub(r"\s+", "", text)
    if not compact:
        return None
    try:
        raw = base64.b64decode(compact + "=" * (-len(compact) % 4), validate=False)
    except (binascii.Error, ValueError):
        return None
    return _bytes_to_text(raw)


def _decodes(args: list[str]) -> bool:
    return any(a in ("-d", "-D", "--decode", "-decode") or re.fullmatch(r"-[a-zA-Z]*d[a-zA-Z]*", a) for a in args)


def _bytes_to_text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # round-trips binary (gzip) for the next stage


def _unescape(text: str) -> str:
    return text.replace("\\n", "\n").replace("\\t", "\t")


def _printf(args: list[str]) -> str | None:
    if not args:
        return None
    fmt, rest = _unescape(args[0]), list(args[1:])
    if not rest:
        return fmt
    pieces = fmt.split("%s") if "%s" in fmt else fmt.split("%b")
    if len(pieces) == 1:
        return fmt + "".join(rest)
    out = pieces[0]
    for i, piece in enumerate(pieces[1:]):
        out += (rest[i] if i < len(rest) else "") + piece
    return out + ("".join(rest[len(pieces) - 1 :]) if len(rest) >= len(pieces) else "")

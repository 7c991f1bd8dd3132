"""Backdoor signals in code an agent wrote, judged by what the code does (rules/code.yaml).

Persistence rules judge *where* a write lands; these judge *what* a write to ordinary source does: decode then
execute, a shell handed to a socket, secrets sent out, an auth check taken away, code run at install time.
Each signal names an effect and its regexes describe it in several languages, so it holds for code nobody
wrote a test for. Every regex sees at most MAX_LINE characters of a line: bounded time on hostile input.

The modules: ``rules`` compiles rules/code.yaml; ``review`` runs every signal over a change set and makes the
findings; the checks a regex over one line cannot express live one per concern: ``decode_exec``, ``network``
(new hosts, secret egress, literal sockets), ``hardcoded_secret``, ``auth_bypass``, ``install_hook``,
``dependencies``, ``obfuscation``; ``functions`` finds function headers for the checks that need them.
"""

from foothold.detections.code_signals.review import CodeFinding, review_changes

__all__ = ["CodeFinding", "review_changes"]

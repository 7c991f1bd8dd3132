"""Decoded or downloaded data handed to something that runs it."""

from __future__ import annotations

import re

from foothold.detections.code_changes import CodeChange
from foothold.detections.code_signals.rules import CodeRules

# An assignment in most languages: optional modifiers and a type, a name (maybe indexed), then = or :=.
_ASSIGN = re.compile(
    r"^\s*(?:(?:final|const|let|var|my|local|val|auto|static|private|public|readonly)\s+)*"
    r"(?:[A-Za-z_][\w.<>\[\]?]*\s+)?\$?([A-Za-z_]\w*)(?:\[[^\]]*\])?(?:\s*,\s*\w+)*\s*(?::=|=)(?!=)\s*(.+)$"
)
# Writes that carry data into a file (its path joins the data: running that file runs the data).
_WRITES = re.compile(
    r"WriteFile|write_bytes|write_text|writeFileSync|writeFile|createWriteStream|fwrite|file_put_contents"
    r"|File\.write|Files\.write|open\([^)]*[\"'][wa]b?[\"']"
)
_SINK_WINDOW = 3  # a call's arguments may run over a few lines
# Every finding below is an added line a sink matches (see screen.py: rules-list names or regexes).
SCREEN = ("exec_sinks",)


def decode_exec(added: list[str], _removed: list[str], _change: CodeChange, rules: CodeRules) -> str | None:
    """Data that was encoded, or fetched from the network, reaches something that runs it: in one statement,
    through names assigned from it (renamings included), or through a file it was written to."""
    sinks, decoders = rules.lists["exec_sinks"], rules.lists["decoders"]
    fetches = re.compile(rules.lists["net_sends"].pattern + "|" + rules.lists["socket_reads"].pattern)
    tainted: set[str] = set()
    for i, line in enumerate(added):
        window = "\n".join(added[i : i + _SINK_WINDOW])
        if sinks.search(line) and decoders.search(window):
            return line.strip()
        uses_tainted = any(re.search(rf"\b{re.escape(n)}\b", line) for n in tainted)
        if uses_tainted and sinks.search(line):
            return line.strip()
        m = _ASSIGN.match(line)
        if m and (decoders.search(m.group(2)) or fetches.search(m.group(2)) or uses_tainted):
            tainted.add(m.group(1))
        if uses_tainted and _WRITES.search(line):
            tainted.update(re.findall(r"\b[A-Za-z_]\w*\b", line))  # the file now holds the data
    return None

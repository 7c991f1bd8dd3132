"""What the analysis of one command line finds: the files it writes and the programs it runs."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FileWrite:
    """A file the command writes (or makes executable)."""

    path: str  # resolved: absolute when cwd/home are known, else "~/..." or relative
    action: str  # write | append | create | link | copy | move | edit | chmod | download
    evidence: str
    content: str | None = None  # what is written, when the command line shows it
    alt_path: str | None = None  # DEST/basename(SRC): used when DEST turns out to be a directory


@dataclass(frozen=True)
class Invocation:
    """A simple command that runs, after sudo/env/nohup/... prefixes are stripped."""

    argv: tuple[str, ...]
    stdin: str | None  # known standard input (heredoc, here-string, echo ... |)
    cwd: str | None
    remote: bool = False  # runs on another host (ssh HOST CMD)


@dataclass
class ShellIntent:
    writes: list[FileWrite] = field(default_factory=list)
    invocations: list[Invocation] = field(default_factory=list)
    parser: str = "bashlex"  # bashlex | shlex-fallback | split-fallback (and "+fallback" when nested)
    notes: list[str] = field(default_factory=list)

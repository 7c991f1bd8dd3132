"""The shell fast path returns exactly what the bashlex path returns, for every command line it accepts.

The counterpart is bashlex itself (the real parser the analysis is built on), run on the same text: the
command-line inputs of the persistence corpora (attacks and benign look-alikes), the benchmark's agent
commands, and command lines generated from a vocabulary of quoting, redirection and operator forms, so the
comparison covers the edges of what the fast path accepts, not only the cases it was written for.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml

from foothold.detections import shell
from foothold.detections.shell.parse import _collect
from foothold.detections.shell.simple import parse_simple
from foothold.detections.shell.syntax import Pipeline

CORPORA = Path(__file__).parent / "corpus"

AGENT_COMMANDS = [
    "git status --short",
    "pytest -q tests/test_api.py -x  # ~0000abcd",
    "cat README.md | head -50",
    "grep -rn 'TODO' src/ | wc -l",
    "docker ps --format '{{.Names}}'",
    "echo 'export PATH=$HOME/bin:$PATH' >> ~/.bashrc",
    "npm test -- --watch=false",
    "find . -name '*.py' -newer setup.cfg",
    'FOO=1 BAR="x y" make CFLAGS=-O2 all',
    "ls 2>/dev/null >> out.txt 2>&1 < in",
    "sudo tee -a /etc/sudoers.d/x < rule",
    "cp id.pub ~/.ssh/authorized_keys && chmod 600 ~/.ssh/authorized_keys; echo done",
    "echo a2>f",
    "echo 12>f",
    "python -m http.server 8000 &",
    "echo $(whoami) > /tmp/x",
    "if true; then echo x; fi",
    "echo hi |",
    "a=b",
    "echo '#not a comment' # a comment",
    "echo x#y",
    "echo \"a\"'b'",
    "{ echo x; } > f",
    "cat <<EOF\nx\nEOF",
    "echo 'unterminated",
]

# Pieces the generator joins: words in every quoting form the fast path reads (and some it must refuse).
_PIECES = [
    "echo",
    "git",
    "curl",
    "-s",
    "--flag=x",
    "'quoted text'",
    '"double q"',
    "$HOME",
    "$HOME/bin",
    "~/.bashrc",
    "a=b",
    "X='1 2'",
    "*.py",
    "?x",
    "#c",
    "x#y",
    "12",
    "2>",
    ">",
    ">>",
    "<",
    "2>&1",
    ">&2",
    "|",
    "||",
    "&&",
    ";",
    "&",
    "'",
    '"',
    "$(id)",
    "`id`",
    "\\x",
    "{",
    "}",
    "(",
    ")",
    "[[",
    "!",
    "if",
    "then",
    "fi",
    "time",
    "/etc/cron.d/x",
    "https://x.example/a?b=c",
    "-",
    "--",
    "=x",
    "'$HOME'",
    '"$HOME"',
    "a'b'",
    "1>>",
    "<<",
]


def _bashlex(text: str) -> list[Pipeline] | None:
    import bashlex

    try:
        pipelines: list[Pipeline] = []
        for node in bashlex.parse(text):
            _collect(node, pipelines)
        return pipelines
    except Exception:
        return None


def _corpus_commands() -> list[str]:
    found: list[str] = []
    for path in sorted(CORPORA.glob("*cases.yaml")):
        for case in yaml.safe_load(path.read_text())["cases"]:
            if isinstance(case.get("input"), str):
                found.append(case["input"])
    return found


def _generated(count: int) -> list[str]:
    rng = random.Random(18)
    return [" ".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 7))) for _ in range(count)]


def test_the_fast_path_agrees_with_bashlex_on_everything_it_accepts() -> None:
    commands = AGENT_COMMANDS + _corpus_commands() + _generated(4000)
    accepted = 0
    for text in commands:
        simple = parse_simple(text)
        if simple is None:
            continue
        accepted += 1
        assert simple == _bashlex(text), text
    assert accepted > 1000  # it does take the plain lines (a fast path that refuses everything proves nothing)


@pytest.mark.parametrize(
    "text",
    [
        "echo $(whoami) > /tmp/x",
        "if true; then echo x; fi",
        "python -m http.server 8000 &",
        "echo 12>f",
        "cat <<EOF\nx\nEOF",
        "echo 'unterminated",
        "{ echo x; } > f",
        "echo hi |",
    ],
)
def test_what_it_cannot_read_goes_to_bashlex(text: str) -> None:
    assert parse_simple(text) is None


def test_the_analysis_is_unchanged_for_a_persistence_write() -> None:
    intent = shell.analyze("echo 'ssh-ed25519 AAAA k' >> ~/.ssh/authorized_keys  # ~1", cwd="/w", home="/home/u")
    assert intent.parser == "bashlex"
    assert [(w.path, w.action) for w in intent.writes] == [("/home/u/.ssh/authorized_keys", "append")]

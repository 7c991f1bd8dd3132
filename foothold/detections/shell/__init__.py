"""Shell intent analysis: what files does a command line write, and which programs does it run?

A keyword regex over the raw command cannot tell ``cat ~/.ssh/authorized_keys`` (a read) from
``cat key >> ~/.ssh/authorized_keys`` (a write), so this package parses the command with bashlex, a real
bash grammar, and judges the *effect* of every simple command: redirections, ``tee``, ``sed -i``,
``cp``/``mv``/``install``/``ln`` destinations, ``dd of=``, heredocs, and code hidden one level down
(``bash -c``, ``eval``, ``python -c``, ``ssh host CMD``, base64-decoded pipelines).

When bashlex cannot parse the text (``[[ ]]``, ``case``, arithmetic, unbalanced quotes ...) the command
is split with ``shlex`` on ``; | && || &`` and newlines instead, and the result says so in ``parser``.

Nothing here knows what persistence is; the ``classify`` package maps the writes and invocations onto the rules.
Pure stdlib + bashlex. Every public function is total: weird input yields an empty result, never an error.

The modules, in the order a command flows through them:

- ``heredocs``: heredoc bodies cut out before parsing (neither parser handles quoted delimiters).
- ``parse`` (bashlex) and ``fallback_parse`` (shlex): text -> the pipelines of ``syntax``.
- ``interpret``: runs the pipelines: expands words, strips ``sudo``/``env``/... (``prefixes``), carries what a
  stage prints to the next (``known_output``) and hands each command to ``effects``.
- ``effects``: the program -> handler table; ``builtins`` (cd, export), ``writers`` (programs that write files),
  ``runners`` (programs that run other code: ``sh -c``, ``ssh``, interpreters) and ``inline_code``
  (file writes and commands inside ``python -c``/``perl -e``/``node -e`` code).
- ``context`` is the state one analysis carries; ``intent`` the result; ``paths`` the path resolution.
"""

from foothold.detections.shell.intent import FileWrite, Invocation, ShellIntent
from foothold.detections.shell.interpret import analyze
from foothold.detections.shell.paths import resolve_path

__all__ = ["FileWrite", "Invocation", "ShellIntent", "analyze", "resolve_path"]

"""``foothold-audit hook install claude-code``: write the hook into Claude Code's settings.json, one entry per
hook event, with the hook's configuration on its command line (Claude Code strips ``OTEL_*`` from hooks)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from . import hook_forwarder
from .claude_code import EVENTS, TOOL_EVENTS, HookConfig


def default_settings_path() -> Path:
    return Path(os.path.expanduser("~")) / ".claude" / "settings.json"


def default_command() -> list[str]:
    """The hook command, absolute: Claude Code runs hooks with its own PATH, where a venv's ``foothold-audit``
    usually is not (every hook would exit 127, silently). This interpreter with ``-S`` runs the forwarder's client
    file directly: skipping ``site`` saves ~27 ms of every event's ~70 (the client needs only the standard library;
    it loads ``site`` itself when no forwarder answers). Same as ``foothold-audit hook claude-code``."""
    return [
        str(Path(sys.executable).absolute()),
        "-S",
        str(Path(hook_forwarder.__file__).resolve()),
        "hook",
        "claude-code",
    ]


def _quote(word: str) -> str:
    import shlex

    return shlex.quote(word)


def hook_command_line(command: list[str], config: HookConfig) -> str:
    """The command line ``install`` writes: the executable, then every setting as a flag (``OTEL_*`` never
    reaches the hook; the command line does)."""
    words = list(command)
    if config.endpoint:
        words += ["--endpoint", config.endpoint]
    if config.token_file:
        words += ["--token-file", config.token_file]
    if config.capture_content is not None:
        words.append("--capture-content" if config.capture_content else "--no-capture-content")
    if config.deny_persistence:
        words.append("--deny-persistence")
    return " ".join(_quote(w) for w in words)


def _runnable_warning(command: list[str]) -> str | None:
    executable = command[0]
    if not os.path.isabs(executable):
        resolved = shutil.which(executable)
        if resolved is None:
            return f"{executable!r} is not on this PATH: Claude Code would fail to start the hook (exit 127)"
        return f"{executable!r} is a bare name: Claude Code finds it only if its PATH holds {os.path.dirname(resolved)}"
    if not (os.path.isfile(executable) and os.access(executable, os.X_OK)):
        return f"{executable} is not an executable file: Claude Code will fail to start the hook"
    return None


def install(
    settings_path: Path | None = None,
    *,
    deny_persistence: bool = False,
    command: str | None = None,
    timeout_seconds: int = 10,
    fingerprint_key_file: Path | None = None,
    endpoint: str | None = None,
    token_file: Path | None = None,
    capture_content: bool | None = None,
) -> tuple[Path, list[str]]:
    """Add (or refresh) Foothold's hook entries in a Claude Code settings.json, keeping every other hook and
    setting; running it twice leaves one entry per event. The command is written with an absolute executable
    and the settings as flags; ``fingerprint_key_file`` goes into the settings' ``env`` (applied to the session
    and its hooks) as ``FOOTHOLD_FINGERPRINT_KEY_FILE``: the path, never the key. Returns the settings file and
    warnings (no fingerprint key; an executable Claude Code cannot run)."""
    import shlex

    from foothold.instrumentation.keys import FINGERPRINT_KEY_ENV, FINGERPRINT_KEY_FILE_ENV, read_key_file

    path = settings_path or default_settings_path()
    try:
        settings = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except ValueError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); fix it before installing hooks") from None
    if not isinstance(settings, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    hooks = settings.setdefault("hooks", {})
    if not isinstance(hooks, dict):
        raise ValueError(f"{path}: 'hooks' is not an object")
    env = settings.get("env", {})
    if not isinstance(env, dict):
        raise ValueError(f"{path}: 'env' is not an object")
    if fingerprint_key_file is not None:
        key_file = str(fingerprint_key_file.expanduser().resolve())
        read_key_file(key_file)  # unreadable or empty: fail now, not in every hook
        env = settings["env"] = {**env, FINGERPRINT_KEY_FILE_ENV: key_file}
    from . import hook_export

    token = None
    if token_file is not None:
        token = str(token_file.expanduser().resolve())
        hook_export.Destination.resolve(endpoint, token, 1.0)  # unreadable or empty: fail now
    words = shlex.split(command) if command else default_command()
    config = HookConfig(endpoint, token, capture_content, deny_persistence)
    full = hook_command_line(words, config)
    for event in EVENTS:
        groups = [g for g in hooks.get(event, []) if isinstance(g, dict)]
        for group in groups:  # drop earlier Foothold entries (any flags, any path), keep everyone else's
            group["hooks"] = [h for h in group.get("hooks", []) if not _is_ours(h)]
        groups = [g for g in groups if g.get("hooks")]
        entry: dict[str, Any] = {"hooks": [{"type": "command", "command": full, "timeout": timeout_seconds}]}
        if event in TOOL_EVENTS:
            entry = {"matcher": "*", **entry}
        groups.append(entry)
        hooks[event] = groups
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".foothold.tmp")
    tmp.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    warnings = []
    if runnable := _runnable_warning(words):
        warnings.append(runnable)
    keyed = any(name in env or os.environ.get(name) for name in (FINGERPRINT_KEY_FILE_ENV, FINGERPRINT_KEY_ENV))
    if not keyed:
        warnings.append(
            f"no fingerprint key: each hook event is a new process with its own random key, so fingerprints of the "
            f"same secret will not correlate across tool calls or with the collector (credential reuse goes "
            f"unnoticed). Put the deployment key (the collector's fingerprint_key) in a file only you can read and "
            f"run again with --fingerprint-key-file PATH (sets {FINGERPRINT_KEY_FILE_ENV} in {path}'s env)."
        )
    return path, warnings


def _is_ours(hook: Any) -> bool:
    return isinstance(hook, dict) and isinstance(hook.get("command"), str) and "hook claude-code" in hook["command"]

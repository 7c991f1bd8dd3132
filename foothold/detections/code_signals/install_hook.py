"""Code that runs at install or build time: lifecycle scripts, setup.py commands, build logic."""

from __future__ import annotations

import re
from collections.abc import Sequence

from foothold.detections.code_changes import CodeChange
from foothold.detections.code_signals.rules import CodeRules

# npm and composer lifecycle scripts: run by every install of the package.
_LIFECYCLE = re.compile(
    r"""["'](preinstall|install|postinstall|prepare|prepublish|preuninstall|postuninstall|prepack|postpack"""
    r"""|(?:pre|post)-(?:install|update|autoload)-(?:cmd|dump))["']\s*:\s*\[?\s*["'](.*)["']"""
)
_LIFECYCLE_KEY = re.compile(
    r"""["']((?:pre|post)?install|prepare|(?:pre|post)-(?:install|update|autoload)-(?:cmd|dump))["']\s*:\s*(\[)\s*$"""
)
_FETCHES = re.compile(
    r"\b(?:curl|wget|Invoke-WebRequest|iwr|Invoke-RestMethod|urlopen|urllib|requests\.|reqwest|ureq|http\.Get"
    r"|HttpClient|WebClient|file\(\s*DOWNLOAD|fetch\()|https?://",
    re.IGNORECASE,
)
_RUNS = re.compile(
    r"node\s+-e|python[\d.]*\s+-c|\b(?:ba)?sh\s+-c|[\"']-c[\"']|\|\s*(?:ba)?sh\b|\beval\b|powershell|os\.system|subprocess"
    r"|Command::new|Command\(|exec\(|execSync|execFile|spawn\(|child_process|execute_process|Runtime\.getRuntime"
    r"|ProcessBuilder|system\(|`[^`]+`|%x\{",
    re.IGNORECASE,
)
_SETUP_HOOK = re.compile(r"\bcmdclass\b|class\s+\w+\(\s*(?:install|develop|egg_info|build_py|build_ext|sdist)\s*\)")


# A finding needs an added lifecycle script, or the added text fetching or running code.
SCREEN = (_LIFECYCLE, _LIFECYCLE_KEY, _FETCHES, _RUNS)


def install_hook(added: list[str], _removed: list[str], change: CodeChange, _rules: CodeRules) -> str | None:
    """Code that runs on every install or build of the package: npm/composer lifecycle scripts, setup.py
    install commands, build.rs, Gradle/Maven/CMake build logic, native-extension configs. ``husky install`` in
    ``prepare`` or ``node-gyp rebuild`` is routine; a hook that fetches or runs inline code is not."""
    for i, line in enumerate(added):
        m = _LIFECYCLE.search(line) or _LIFECYCLE_KEY.search(line)
        if m:
            script = "\n".join([m.group(m.lastindex or 1)] + added[i + 1 : i + 6])  # arrays run over lines
            if _FETCHES.search(script) or _RUNS.search(script):
                return f"{m.group(1)} script: {script.strip()[:200]}"
    if change.path.endswith(("package.json", "composer.json")):
        return None  # only their lifecycle scripts run at install time
    if change.path.endswith("Makefile") and not _in_install_target(added, change):
        return None  # `make install` runs at install time; a dev target that bootstraps a tool does not
    text = "\n".join(added)
    if _SETUP_HOOK.search(text) and (_RUNS.search(text) or _FETCHES.search(text)):
        return next(line.strip() for line in added if _SETUP_HOOK.search(line))
    fetch, run = _FETCHES.search(text), _RUNS.search(text)
    if fetch and run:
        return f"build-time code fetches ({fetch.group(0)}) and runs ({run.group(0)})"
    return None


def _in_install_target(added: list[str], change: CodeChange) -> bool:
    """Whether an added Makefile line sits in the ``install`` target (the one packagers and users run)."""
    lines = change.after.splitlines() if change.after is not None else added
    target = ""
    for line in lines:
        m = re.match(r"^([\w.\-]+)\s*:(?!=)", line)
        if m:
            target = m.group(1)
        if line in added and target == "install" and line.startswith("\t"):
            return True
    return False


def lifecycle_scripts(change: CodeChange) -> list[str]:
    """Local files a manifest's added install-time scripts run (``node ./scripts/pre.js``)."""
    files = []
    for line in change.added:
        m = _LIFECYCLE.search(line) or _LIFECYCLE_KEY.search(line)
        if m:
            files += re.findall(r"(?:\./)?([\w.\-/]+\.(?:c?js|mjs|ts|sh|py|php|rb|ps1))\b", line)
    return files


def scripts_run_at_install(changes: Sequence[CodeChange]) -> list[tuple[CodeChange, str]]:
    """A lifecycle script added in a manifest that runs a file the same change set writes, when that file
    fetches or runs code: the install hook is the pair, not either half. Returns (manifest, evidence) pairs."""
    found = []
    for manifest in changes:
        for script in lifecycle_scripts(manifest):
            for change in changes:
                text = "\n".join(change.added)
                if change.path.endswith(script) and (_FETCHES.search(text) and _RUNS.search(text)):
                    found.append((manifest, f"install script runs {change.path}, which fetches and runs code"))
    return found

"""The agent's watch list is derived from the persistence rules: every location a rule names is watched.

Relates instrumentation/watch.py (what the agent snapshots around each call) to
foothold/detections/rules/persistence.yaml (what the collector calls persistence).
"""

from __future__ import annotations

import fnmatch

from foothold.detections.classify import load_rules
from foothold.detections.watchlist import derived_entries, expand_braces, render_module, watch_entry, watch_list
from foothold.instrumentation.watch import DEFAULT_WATCH
from foothold.instrumentation.watch_paths import DERIVED_WATCH


def test_generated_copy_is_current() -> None:
    """instrumentation/watch_paths.py is the rules' watch list (python -m foothold.detections.watchlist)."""
    namespace: dict[str, object] = {}
    exec(render_module(), namespace)  # our own generated module text
    assert namespace["DERIVED_WATCH"] == DERIVED_WATCH == watch_list()
    assert DEFAULT_WATCH == DERIVED_WATCH


def _sees(entry: str, path: str) -> bool:
    """Would a snapshot of ``entry`` see a write to ``path``? (one level for DIR/, two for DIR/**)."""
    if entry.endswith("/**"):
        base = entry[:-3]
        rest = path[len(base) + 1 :] if path.startswith(base + "/") else None
        return rest is not None and rest.count("/") <= 1
    if entry.endswith("/"):
        rest = path[len(entry) :] if path.startswith(entry) else None
        return rest is not None and "/" not in rest
    return entry == path


def test_every_watchable_rule_location_is_watched() -> None:
    rules = load_rules()
    replace = rules.watch.get("replace") or {}
    exclude = set(rules.watch.get("exclude") or ())
    unwatched = []
    for rule in rules.paths:
        for raw in rule.globs:
            for glob in expand_braces(raw):
                entry = watch_entry(glob)
                if entry is None or entry in exclude or entry in replace:
                    continue  # not cheaply watchable, or narrowed on purpose (listed in the rule file)
                # a concrete example path for the glob: the glob with its wildcards filled in
                example = glob.replace("**", "x").replace("*", "x").replace("?", "x")
                if "[" in example:
                    continue
                if not any(_sees(w, example) for w in DEFAULT_WATCH):
                    unwatched.append((rule.id, glob))
    assert unwatched == []


def test_derivation_rules() -> None:
    assert watch_entry("/etc/crontab") == "/etc/crontab"
    assert watch_entry("/etc/cron.d/*") == "/etc/cron.d/"
    assert watch_entry("/etc/systemd/system/**") == "/etc/systemd/system/**"
    assert watch_entry("~/.ssh/authorized_keys*") == "~/.ssh/"
    assert watch_entry("*.pth") is None  # any depth: left to the tool-call classifier
    assert watch_entry("/usr/lib/python3*/site-packages/dnf-plugins/*") is None
    assert expand_braces("/etc/cron.{daily,weekly}/*") == ["/etc/cron.daily/*", "/etc/cron.weekly/*"]
    # the agent's own churning state is not watched (Claude Code rewrites it every call)
    assert "~/.claude.json" not in DEFAULT_WATCH and "~/.claude/**" not in DEFAULT_WATCH
    assert "~/.claude/" in DEFAULT_WATCH


def test_watch_list_covers_the_new_vectors() -> None:
    for path in ("/etc/update-motd.d/99-x", "/Library/StartupItems/X/X", "/etc/polkit-1/rules.d/x.rules"):
        assert any(_sees(w, path) for w in DEFAULT_WATCH), path
    assert any(fnmatch.fnmatch("~/.ssh/config", w.rstrip("/") + "/*") for w in DEFAULT_WATCH)
    assert len(derived_entries(load_rules())) > 150

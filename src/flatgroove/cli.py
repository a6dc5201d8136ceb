"""The `flatgroove` command: one entry point, one subcommand per job."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Callable

from flatgroove.errors import UserError  # noqa: F401 - re-exported: flatgroove.cli.UserError

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def _data_stats(args: argparse.Namespace) -> int:
    import numpy as np

    from flatgroove.data import load_dataset
    from flatgroove.drums import DRUMS

    ws = load_dataset(args.path, use_cache=not args.no_cache)
    counts = ws.split_counts()
    files = len(set(ws.meta["file"]))
    print(f"dataset     {args.path}")
    print(f"files       {files} with windows, {len(ws.skipped)} skipped")
    print(f"windows     {len(ws)} (2 bars, 1-bar hop)")
    for split in ("train", "validation", "test"):
        if split in counts:
            print(f"  {split:<10}{counts[split]:>7}")
    for split, n in counts.items():
        if split not in ("train", "validation", "test"):
            print(f"  {split:<10}{n:>7}")
    if len(ws):
        print(f"tempo       {ws.tempos.min():.0f}-{ws.tempos.max():.0f} BPM (median {np.median(ws.tempos):.0f})")
        print("hits per drum")
        hpd = ws.hits_per_drum()
        for name, n in zip(DRUMS, hpd):
            print(f"  {name:<10}{int(n):>9}")
    _print_skipped(ws.skipped, files + len(ws.skipped))
    return 0


def _skip_reason(file: str, why: str) -> str:
    """'path: too short for a window (1 bar ...)' -> 'too short for a window': the reason
    without the file name and the details, so that files skipped for one reason group."""
    r = why[len(file):].lstrip(": ") if why.startswith(file) else why
    return r.split(" (")[0].strip() or "unreadable"


def _print_skipped(skipped: list[tuple[str, str]], total: int, show: int = 3) -> None:
    if not skipped:
        return
    groups: dict[str, list[tuple[str, str]]] = {}
    for f, why in skipped:
        groups.setdefault(_skip_reason(f, why), []).append((f, why))
    print(f"skipped     {len(skipped)} of {total} files")
    for reason, items in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        print(f"  {len(items):>5}  {reason}")
        for _, why in items[:show]:
            print(f"           {why}")
        if len(items) > show:
            print(f"           ... {len(items) - show} more")


def _data_show(args: argparse.Namespace) -> int:
    from flatgroove.midi import read_drums, windows

    part = read_drums(args.file, drum_map=args.map)
    ws = windows(part, hop_bars=args.hop)
    print(f"{args.file}: {part.n_bars} bars, {len(part.steps)} drum notes, {part.tempo:.1f} BPM, {len(ws)} windows")
    for what, n in part.ignored.items():
        print(f"ignored: {what}" + (f" ({n} notes)" if n else ""))
    for start, g in ws[: args.limit]:
        print()
        print(g.grid(title=f"bars {start + 1}-{start + 2}"))
    if len(ws) > args.limit:
        print(f"\n... {len(ws) - args.limit} more windows (--limit)")
    return 0


def _whole_number(text: str, least: int) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if n < least:
        raise argparse.ArgumentTypeError(f"must be at least {least}, got {n}")
    return n


def positive_int(text: str) -> int:
    """argparse type: a whole number ≥ 1 (a clear usage error, not a traceback, otherwise)."""
    return _whole_number(text, 1)


def nonnegative_int(text: str) -> int:
    """argparse type: a whole number ≥ 0."""
    return _whole_number(text, 0)


def build_parser() -> argparse.ArgumentParser:
    from flatgroove import __version__

    p = argparse.ArgumentParser(prog="flatgroove", description=__doc__)
    p.add_argument("--version", action="version", version=f"flatgroove {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="more log output")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    data = sub.add_parser("data", help="inspect datasets and MIDI files")
    dsub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    data.set_defaults(func=lambda _args: data.print_help() or 1)  # `flatgroove data` alone
    st = dsub.add_parser("stats", help="files, windows per split, hits per drum, tempo range")
    st.add_argument("path", nargs="?", default=None, help="Groove MIDI Dataset folder or any MIDI folder")
    st.add_argument("--no-cache", action="store_true", help="rebuild the windows from MIDI")
    st.set_defaults(func=_data_stats)
    sh = dsub.add_parser("show", help="the grids of a MIDI file's 2-bar windows")
    sh.add_argument("file", help="a MIDI file")
    sh.add_argument("--map", default="gm", choices=["gm", "td11"], help="drum pitch map")
    sh.add_argument("--hop", type=positive_int, default=2, help="bars between windows (default 2)")
    sh.add_argument("--limit", type=positive_int, default=8, help="show at most this many windows")
    sh.set_defaults(func=_data_show)

    for register in _extensions():
        register(sub)
    return p


def _extensions():
    """Subcommands defined next to the code they drive (train, evaluate, generate, jam, serve)."""
    import importlib

    out = []
    for mod in ("flatgroove.train.cli", "flatgroove.evaluate.cli", "flatgroove.generate.cli",
                "flatgroove.live.cli", "flatgroove.web.cli", "flatgroove.demo"):
        try:
            m = importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name and e.name.startswith("flatgroove"):
                continue  # that part is not built yet
            raise
        out.append(m.register)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s: %(message)s",
    )
    # Dataset arguments left out mean the Groove MIDI Dataset at its default place.
    for attr in ("path", "data"):
        if hasattr(args, attr) and getattr(args, attr) is None:
            from flatgroove.data import default_root

            setattr(args, attr, default_root())
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 1
    from flatgroove.errors import USER_ERRORS

    try:
        return int(func(args) or 0)
    except USER_ERRORS as e:
        print(f"flatgroove: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("flatgroove: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `flatgroove data show F | head`: the reader has gone; stop quietly, and point
        # stdout at /dev/null so that the flush at exit does not complain either.
        import os

        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a process that pipe killed
    except OSError as e:
        # a disk's answer (permission denied, a file where a folder should be, disk full) is
        # the user's to act on, not a traceback
        where = f"{e.filename}: " if e.filename else ""
        print(f"flatgroove: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

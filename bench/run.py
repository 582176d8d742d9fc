"""`make bench`: run every benchmark section and print its table.

    .venv/bin/python bench/run.py [--quick] [--only NAME ...] [--list] [section flags]

A section is a module ``bench/bench_NAME.py`` with ``run(args) -> str`` (its table),
optionally ``TITLE`` (a one-line heading) and ``add_arguments(parser)`` (its own
flags, which appear in ``--help``). Sections are found by file name and run in
alphabetical order. Benchmarks print figures; they assert nothing about speed.
"""

import argparse
import glob
import importlib
import os
import signal
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))


def discover() -> dict:
    """Section name -> imported module, for every bench/bench_*.py."""
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    sections = {}
    for path in sorted(glob.glob(os.path.join(HERE, "bench_*.py"))):
        module = os.path.basename(path)[:-3]
        sections[module[len("bench_"):]] = importlib.import_module(module)
    return sections


def main(argv: "list | None" = None) -> int:
    """Run the chosen sections; exit status 1 if any failed."""
    sections = discover()
    ap = argparse.ArgumentParser(description="ovpnkx benchmarks: tables of figures measured side by side.")
    ap.add_argument("--quick", action="store_true", help="fewer runs and shorter measurements (< 1 min)")
    ap.add_argument("--only", action="append", default=[], metavar="NAME",
                    help="run only this section (repeatable; or comma-separated): %s" % ", ".join(sections))
    ap.add_argument("--list", action="store_true", help="list the sections and exit")
    for name, mod in sections.items():
        if hasattr(mod, "add_arguments"):
            mod.add_arguments(ap.add_argument_group("section %s" % name))
    args = ap.parse_args(argv)
    if args.list:
        for name, mod in sections.items():
            print("%-14s %s" % (name, getattr(mod, "TITLE", "")))
        return 0
    chosen = [n.strip() for item in args.only for n in item.split(",") if n.strip()] or list(sections)
    unknown = [n for n in chosen if n not in sections]
    if unknown:
        ap.error("no section %s (have: %s)" % (", ".join(unknown), ", ".join(sections)))
    # a SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C does: each section's finally blocks
    # stop the boards, servers and temporary folders it started, which die with it otherwise
    signal.signal(signal.SIGTERM, _terminated)
    failed = []
    t_all = time.monotonic()
    for name in chosen:
        mod = sections[name]
        title = getattr(mod, "TITLE", name)
        print("== %s: %s%s ==" % (name, title, " (quick)" if args.quick else ""), flush=True)
        t0 = time.monotonic()
        try:
            table = mod.run(args)
        except Exception:
            failed.append(name)
            print("section %s FAILED:\n%s" % (name, traceback.format_exc()), flush=True)
            continue
        print(table)
        print("(%s: %.1f s)\n" % (name, time.monotonic() - t0), flush=True)
    print("bench: %d section(s) in %.1f s%s" % (len(chosen), time.monotonic() - t_all,
                                               "; FAILED: " + ", ".join(failed) if failed else ""))
    return 1 if failed else 0


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    sys.exit(main())

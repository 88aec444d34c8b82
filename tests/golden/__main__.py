"""Check or re-pin the golden checksums: ``python -m tests.golden [--repin]``.

Without arguments it lists every difference between today's tables and the pinned
checksums (exit code 1 if any).  ``--repin`` writes today's checksums; it needs a
bullet starting with "Results change" under ``## Unreleased`` in CHANGELOG.md.
"""

from __future__ import annotations

import argparse
import sys

from . import CHECKSUMS, REPIN, RepinRefused, compare, compute, load_pinned, repin


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.golden", description=__doc__.splitlines()[0])
    parser.add_argument("--repin", action="store_true", help="write today's checksums to " + str(CHECKSUMS))
    args = parser.parse_args(argv)
    current = compute()
    if args.repin:
        try:
            repin(current=current)
        except RepinRefused as exc:
            print(f"not re-pinned: {exc}", file=sys.stderr)
            return 1
        print(f"pinned {len(current)} golden specs in {CHECKSUMS}")
        return 0
    pinned = load_pinned().get("specs", {})
    problems = [line for spec in sorted(set(pinned) | set(current))
                for line in (compare(spec, pinned.get(spec), current[spec]) if spec in current
                             else [f"spec {spec!r} is pinned but its file is gone"])]
    for line in problems:
        print(line)
    if problems:
        print(f"\nIf the change is intended: add a 'Results change' bullet under '## Unreleased' in CHANGELOG.md, "
              f"then run: {REPIN}")
        return 1
    print(f"all {len(current)} golden specs match {CHECKSUMS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

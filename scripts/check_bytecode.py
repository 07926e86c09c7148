"""Check that a built layer ships bytecode for python3.13 beside every module, valid on a read-only file system.

Lambda mounts a layer read-only at /opt: a module without a usable .pyc is compiled again on every cold start. The
bytecode must be hash-based and unchecked (PEP 552: flags 0b01), so that neither the files' times after unzipping nor
a read-only directory makes Python recompile it. Used by scripts/check_build.sh (the deployed arm64 build) and
scripts/invoke.sh (the x86_64 build SAM's emulator runs).

    python scripts/check_bytecode.py <layer>/python
"""

from __future__ import annotations

import sys
from pathlib import Path

TAG = "cpython-313"
UNCHECKED_HASH = 0b01


def missing_or_checked(root: Path) -> tuple[int, list[str]]:
    problems = []
    modules = sorted(path for path in root.rglob("*.py") if "__pycache__" not in path.parts)
    for source in modules:
        compiled = source.parent / "__pycache__" / f"{source.stem}.{TAG}.pyc"
        if not compiled.is_file():
            problems.append(f"no {TAG} bytecode: {source.relative_to(root)}")
            continue
        flags = int.from_bytes(compiled.read_bytes()[4:8], "little")
        if flags != UNCHECKED_HASH:
            problems.append(f"bytecode is not unchecked-hash (flags {flags:#b}): {compiled.relative_to(root)}")
    return len(modules), problems


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print("usage: check_bytecode.py <layer>/python", file=sys.stderr)
        return 2
    count, problems = missing_or_checked(Path(argv[0]))
    for problem in problems[:20]:
        print(f"check_bytecode: {problem}", file=sys.stderr)
    if problems or count == 0:
        print(f"check_bytecode: FAIL: {len(problems)} of {count} modules without usable bytecode", file=sys.stderr)
        return 1
    print(f"check_bytecode: {count} modules, each with unchecked-hash {TAG} bytecode")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

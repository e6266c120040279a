#!/usr/bin/env python3
"""Regenerate the checked-in gRPC stubs of the `portwarden` Python package.

    python clients/python/generate.py            # rewrite clients/python/portwarden/v1/
    python clients/python/generate.py --check    # exit 1 if the checked-in stubs are stale
    python clients/python/generate.py --out DIR  # write DIR/portwarden/v1/ instead

The stubs come from ../../proto/portwarden/v1/*.proto, compiled by the protoc bundled in
grpcio-tools (no system protoc). The output depends only on the .proto files and the
grpcio-tools version, which is pinned in requirements-dev.txt; this script refuses to run with
another version (unless --allow-version-mismatch), so regeneration is byte-for-byte reproducible.

After protoc, imports between the generated modules are rewritten from
`from portwarden.v1 import ports_pb2` to `from . import ports_pb2`, so the stubs work as the
`portwarden.v1` subpackage wherever the package lives.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
PROTO_ROOT = REPO_ROOT / "proto"
PROTO_PACKAGE_DIR = Path("portwarden") / "v1"
REQUIREMENTS_DEV = HERE / "requirements-dev.txt"

# Files protoc writes per .proto file, plus the package marker we write ourselves.
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")
INIT_TEXT = '"""Generated protobuf and gRPC stubs of the portwarden.v1 contract (see generate.py)."""\n'

_SIBLING_IMPORT = re.compile(rb"^from portwarden\.v1 import (\w+_pb2) as ", re.MULTILINE)


def pinned_grpcio_tools_version() -> str:
    for line in REQUIREMENTS_DEV.read_text().splitlines():
        m = re.match(r"^\s*grpcio-tools\s*==\s*([^\s;#]+)", line)
        if m:
            return m.group(1)
    raise SystemExit(f"{REQUIREMENTS_DEV}: no `grpcio-tools==X.Y.Z` pin found")


def installed_grpcio_tools_version() -> str:
    try:
        from importlib.metadata import version
    except ImportError:  # pragma: no cover - Python < 3.8
        raise SystemExit("Python >= 3.8 is needed to run generate.py")
    try:
        return version("grpcio-tools")
    except Exception:
        raise SystemExit(
            "grpcio-tools is not installed: pip install -r " + str(REQUIREMENTS_DEV)
        )


def proto_files() -> list[str]:
    files = sorted(
        p.relative_to(PROTO_ROOT).as_posix() for p in (PROTO_ROOT / PROTO_PACKAGE_DIR).glob("*.proto")
    )
    if not files:
        raise SystemExit(f"no .proto files under {PROTO_ROOT / PROTO_PACKAGE_DIR}")
    return files


def run_protoc(out_root: Path) -> None:
    """Runs grpc_tools.protoc into out_root (which then holds portwarden/v1/*)."""
    import grpc_tools

    well_known = Path(grpc_tools.__file__).resolve().parent / "_proto"
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"--proto_path={PROTO_ROOT}",
        f"--proto_path={well_known}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        *proto_files(),
    ]
    # Run from the proto root so every path protoc records is relative to it.
    proc = subprocess.run(cmd, cwd=PROTO_ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"protoc failed (exit {proc.returncode})")
    for line in proc.stderr.splitlines():
        if line.strip():
            print(f"protoc: {line}", file=sys.stderr)


def fix_imports(pkg_dir: Path) -> None:
    for path in sorted(pkg_dir.iterdir()):
        if path.name.endswith(GENERATED_SUFFIXES):
            data = path.read_bytes()
            fixed = _SIBLING_IMPORT.sub(rb"from . import \1 as ", data)
            if fixed != data:
                path.write_bytes(fixed)


def generate_into(out_root: Path) -> Path:
    """Writes a fresh, complete portwarden/v1/ under out_root and returns that directory."""
    with tempfile.TemporaryDirectory(prefix="portwarden-gen-") as tmp:
        tmp_root = Path(tmp)
        run_protoc(tmp_root)
        gen_dir = tmp_root / PROTO_PACKAGE_DIR
        fix_imports(gen_dir)
        (gen_dir / "__init__.py").write_text(INIT_TEXT)

        dest = out_root / PROTO_PACKAGE_DIR
        dest.mkdir(parents=True, exist_ok=True)
        # Remove stale outputs (e.g. of a deleted .proto) before copying the new set in.
        for old in dest.iterdir():
            if old.name == "__init__.py" or old.name.endswith(GENERATED_SUFFIXES):
                old.unlink()
        for new in sorted(gen_dir.iterdir()):
            if new.is_file():
                shutil.copyfile(new, dest / new.name)
    return dest


def generated_names(pkg_dir: Path) -> list[str]:
    return sorted(
        p.name
        for p in pkg_dir.iterdir()
        if p.is_file() and (p.name == "__init__.py" or p.name.endswith(GENERATED_SUFFIXES))
    )


def compare(a: Path, b: Path) -> list[str]:
    """Differences between two generated portwarden/v1 directories, as human-readable lines."""
    problems = []
    names_a, names_b = generated_names(a), generated_names(b)
    for name in sorted(set(names_a) ^ set(names_b)):
        where = a if name in names_a else b
        problems.append(f"{name}: only in {where}")
    for name in sorted(set(names_a) & set(names_b)):
        if not filecmp.cmp(a / name, b / name, shallow=False):
            problems.append(f"{name}: differs")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=HERE, help="root to write portwarden/v1/ under (default: %(default)s)")
    ap.add_argument("--check", action="store_true", help="do not write; exit 1 if the checked-in stubs differ")
    ap.add_argument(
        "--allow-version-mismatch",
        action="store_true",
        help="run even if the installed grpcio-tools differs from the pin (output will not be reproducible)",
    )
    args = ap.parse_args(argv)

    pinned, installed = pinned_grpcio_tools_version(), installed_grpcio_tools_version()
    if installed != pinned and not args.allow_version_mismatch:
        print(
            f"grpcio-tools {installed} is installed but {REQUIREMENTS_DEV.name} pins {pinned};"
            f" run: pip install -r {REQUIREMENTS_DEV}",
            file=sys.stderr,
        )
        return 2

    if args.check:
        with tempfile.TemporaryDirectory(prefix="portwarden-check-") as tmp:
            fresh = generate_into(Path(tmp))
            problems = compare(HERE / PROTO_PACKAGE_DIR, fresh)
        if problems:
            print("checked-in stubs are stale (run clients/python/generate.py):", file=sys.stderr)
            for p in problems:
                print(f"  {p}", file=sys.stderr)
            return 1
        print("stubs are up to date")
        return 0

    dest = generate_into(args.out.resolve())
    print(f"wrote {', '.join(generated_names(dest))} to {os.path.relpath(dest)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

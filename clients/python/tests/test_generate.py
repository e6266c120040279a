"""The checked-in stubs are exactly what generate.py produces with the pinned grpcio-tools."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CLIENT_ROOT = Path(__file__).resolve().parents[1]
GENERATE = CLIENT_ROOT / "generate.py"
CHECKED_IN = CLIENT_ROOT / "portwarden" / "v1"


def test_stubs_are_reproducible(tmp_path):
    pytest.importorskip("grpc_tools", reason="grpcio-tools is not installed (pip install -r requirements-dev.txt)")
    proc = subprocess.run(
        [sys.executable, str(GENERATE), "--out", str(tmp_path)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr

    fresh = tmp_path / "portwarden" / "v1"
    def listing(d):
        return sorted(p.name for p in d.iterdir() if p.is_file() and p.suffix in (".py", ".pyi"))

    assert listing(fresh) == listing(CHECKED_IN)
    for name in listing(fresh):
        assert (fresh / name).read_bytes() == (CHECKED_IN / name).read_bytes(), (
            f"portwarden/v1/{name} is stale: run `python clients/python/generate.py`"
        )
    for name in listing(CHECKED_IN):
        assert b"from portwarden.v1 import" not in (CHECKED_IN / name).read_bytes(), name


def test_check_mode_passes():
    pytest.importorskip("grpc_tools", reason="grpcio-tools is not installed (pip install -r requirements-dev.txt)")
    proc = subprocess.run([sys.executable, str(GENERATE), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr

"""Hostile and damaged inputs: pickles that run code when unpickled, and byte-level damage to files."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import subprocess
from pathlib import Path

import numpy as np


def global_call(module: str, name: str, *args: str) -> bytes:
    """A protocol-2 pickle of ``module.name(*args)``, written opcode by opcode (no import of ``module``)."""
    out = b"\x80\x02" + pickle.GLOBAL + f"{module}\n{name}\n".encode() + pickle.MARK
    for arg in args:
        data = arg.encode()
        out += pickle.BINUNICODE + struct.pack("<I", len(data)) + data
    return out + pickle.TUPLE + pickle.REDUCE + pickle.STOP


def touch_command(marker: Path) -> str:
    return f"touch '{marker}'"


def write_code(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').write('ran')"


class SystemCall:
    """Unpickling this runs ``subprocess.check_call(['touch', marker])`` through ``__reduce__``."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return subprocess.check_call, (["touch", self.marker],)


class OsSystem:
    """Unpickling this runs ``os.system('touch marker')``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (touch_command(self.marker),)


def hostile_pickles(marker: Path) -> dict[str, bytes]:
    """Pickles that each create ``marker`` when a plain ``pickle.loads`` reads them."""
    nested = {b"batch_label": b"x", b"data": np.zeros((1, 3072), np.uint8), b"labels": OsSystem(marker)}
    return {
        "os-system": global_call("os", "system", touch_command(marker)),
        "builtins-eval": global_call("builtins", "eval", write_code(marker)),
        "builtins-exec": global_call("builtins", "exec", write_code(marker)),
        "reduce-subprocess": pickle.dumps(SystemCall(marker), protocol=2),
        "reduce-inside-batch": pickle.dumps(nested, protocol=2),
        "os-mkdir": global_call("os", "mkdir", str(marker)),
    }


def gzip_with_bad_crc(data: bytes) -> bytes:
    raw = bytearray(gzip.compress(data))
    raw[-8] ^= 0xFF  # the trailer is CRC-32 then ISIZE, 4 bytes each
    return bytes(raw)


def gzip_truncated(data: bytes) -> bytes:
    raw = gzip.compress(data)
    return raw[:len(raw) // 2]


def gzip_corrupt_stream(data: bytes) -> bytes:
    raw = bytearray(gzip.compress(data))
    for i in range(20, len(raw) - 8, 7):
        raw[i] ^= 0x5A
    return bytes(raw)

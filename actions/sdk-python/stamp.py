"""Writes the `berth:contract` custom section into a built component, so the host links it
with the binding it was built for: `python3 actions/sdk-python/stamp.py app.wasm`.

Runs on the build machine (not in the guest). A component already stamped is left alone
when the version agrees and refused when it does not.
"""

import importlib.util
import os
import sys

# The version is the SDK's (berth_sdk/contract.py), read without importing the guest package.
_spec = importlib.util.spec_from_file_location("berth_contract", os.path.join(os.path.dirname(os.path.abspath(__file__)), "berth_sdk", "contract.py"))
_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mod)
CONTRACT = _mod.CONTRACT

SECTION = b"berth:contract"


def _leb(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _read_leb(data, i):
    n = shift = 0
    while True:
        b = data[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def existing(data):
    """The contract section's text at the component's top level, if any."""
    i = 8
    while i < len(data):
        sid = data[i]
        size, j = _read_leb(data, i + 1)
        if sid == 0:
            nlen, k = _read_leb(data, j)
            if data[k:k + nlen] == SECTION:
                return data[k + nlen:j + size].decode()
        i = j + size
    return None


def stamp(path, version=CONTRACT):
    data = open(path, "rb").read()
    if data[:4] != b"\0asm" or data[4:8] != b"\x0d\x00\x01\x00":
        raise SystemExit(f"{path}: not a wasm component")
    have = existing(data)
    if have is not None:
        if have != version:
            raise SystemExit(f"{path}: already stamped for berth:connector {have}, not {version}")
        return
    payload = _leb(len(SECTION)) + SECTION + version.encode()
    tmp = path + ".stamp"
    with open(tmp, "wb") as f:
        f.write(data + b"\0" + _leb(len(payload)) + payload)
    os.replace(tmp, path)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: stamp.py COMPONENT.wasm")
    stamp(sys.argv[1])
    print(f"{sys.argv[1]}: berth:connector {CONTRACT}")

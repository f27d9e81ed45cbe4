"""The C# core's own NaCl primitives (plugins/unity_bridge/Runtime/Core/NaCl.cs, used by its CURVE client)
against published test vectors (RFC 7748 X25519, RFC 8439 Poly1305, NaCl's crypto_box example) and against
libsodium (Debian's libsodium23, through ctypes) on random inputs of many sizes; Z85 against pyzmq's."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import random

import pytest
from unity_build import MONO, mb

pytestmark = MONO

# RFC 7748 section 5.2 (two single multiplications) and section 6.1 (Alice and Bob).
X25519_VECTORS = [
    ("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
     "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
     "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"),
    ("4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
     "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
     "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"),
]
ALICE_SK = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
ALICE_PK = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
BOB_SK = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
BOB_PK = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
SHARED = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
BASE = "09" + "00" * 31
# NaCl's crypto_box example (tests/box.c): HSalsa20 of the shared secret is the box key "firstkey".
FIRSTKEY = "1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389"
# RFC 8439 section 2.5.2
POLY_KEY = "85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b"
POLY_MSG = b"Cryptographic Forum Research Group".hex()
POLY_TAG = "a8061dc1305136c6c22b8baf0c0127a9"


def _run(lines: list[str], tmp_path) -> list[str]:
    f = tmp_path / "ops.txt"
    f.write_text("\n".join(lines) + "\n")
    proc = mb.run_mono(mb.program("TransportCheck"), "crypto", str(f), timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout.splitlines()
    assert out[-1] == "LIBZMQ_MAPPED false"
    return out[:-1]


def test_published_vectors(tmp_path):
    ops = [f"x25519 {n} {p}" for n, p, _ in X25519_VECTORS]
    ops += [f"x25519 {ALICE_SK} {BASE}", f"x25519 {BOB_SK} {BASE}", f"x25519 {ALICE_SK} {BOB_PK}",
            f"x25519 {BOB_SK} {ALICE_PK}", f"hsalsa20 {SHARED} {'00' * 16}", f"poly1305 {POLY_MSG} {POLY_KEY}"]
    want = [o for _, _, o in X25519_VECTORS] + [ALICE_PK, BOB_PK, SHARED, SHARED, FIRSTKEY, POLY_TAG]
    assert _run(ops, tmp_path) == want


def _sodium():
    name = ctypes.util.find_library("sodium")
    if name is None:
        pytest.skip("libsodium not found (apt-get install libsodium23)")
    lib = ctypes.CDLL(name)
    assert lib.sodium_init() >= 0
    return lib


def test_against_libsodium(tmp_path):
    na = _sodium()
    rng = random.Random(2612)
    ops, want = [], []

    def rb(n: int) -> bytes:
        return bytes(rng.getrandbits(8) for _ in range(n))

    for i in range(12):
        n, p = rb(32), rb(32)
        if i == 0:
            p = bytes(32)          # the zero point (a low-order point): all-zero output
        q = ctypes.create_string_buffer(32)
        na.crypto_scalarmult(q, n, p)
        ops.append(f"x25519 {n.hex()} {p.hex()}")
        want.append(q.raw.hex())
    for size in (0, 1, 15, 16, 17, 63, 64, 65, 200, 1000, 4096, 70000):
        pk_a, sk_a = ctypes.create_string_buffer(32), ctypes.create_string_buffer(32)
        pk_b, sk_b = ctypes.create_string_buffer(32), ctypes.create_string_buffer(32)
        na.crypto_box_keypair(pk_a, sk_a)
        na.crypto_box_keypair(pk_b, sk_b)
        m, nonce = rb(size), rb(24)
        c = ctypes.create_string_buffer(size + 16)
        assert na.crypto_box_easy(c, m, ctypes.c_ulonglong(size), nonce, pk_b.raw, sk_a.raw) == 0
        ops.append(f"box {m.hex() or '-'} {nonce.hex()} {pk_b.raw.hex()} {sk_a.raw.hex()}")
        want.append(c.raw.hex())
        ops.append(f"open {c.raw.hex()} {nonce.hex()} {pk_a.raw.hex()} {sk_b.raw.hex()}")
        want.append(m.hex() or "-")
        bad = bytearray(c.raw)
        bad[rng.randrange(len(bad))] ^= 1 << rng.randrange(8)
        ops.append(f"open {bytes(bad).hex()} {nonce.hex()} {pk_a.raw.hex()} {sk_b.raw.hex()}")
        want.append("FAIL")
        key = rb(32)
        tag = ctypes.create_string_buffer(16)
        na.crypto_onetimeauth_poly1305(tag, m, ctypes.c_ulonglong(size), key)
        ops.append(f"poly1305 {m.hex() or '-'} {key.hex()}")
        want.append(tag.raw.hex())
    for _ in range(4):
        key, inp = rb(32), rb(16)
        out = ctypes.create_string_buffer(32)
        na.crypto_core_hsalsa20(out, inp, key, None)
        ops.append(f"hsalsa20 {key.hex()} {inp.hex()}")
        want.append(out.raw.hex())
    got = _run(ops, tmp_path)
    for op, g, w in zip(ops, got, want):
        assert g == w, op[:60]
    assert len(got) == len(want)


def test_z85_against_pyzmq(tmp_path):
    z85 = pytest.importorskip("zmq.utils.z85")
    import zmq
    data = [os.urandom(32) for _ in range(5)] + [bytes(32), b"\xff" * 32, bytes.fromhex("864d11ad")]
    ops = [f"z85enc {d.hex()}" for d in data]
    public, secret = zmq.curve_keypair()
    ops += [f"z85dec {public.decode()}", f"z85dec {secret.decode()}"]
    want = [z85.encode(d).decode() for d in data] + [z85.decode(public).hex(), z85.decode(secret).hex()]
    assert _run(ops, tmp_path) == want
    # a pyzmq key pair is an X25519 key pair: public = X25519(secret, 9)
    assert _run([f"x25519 {z85.decode(secret).hex()} {BASE}"], tmp_path) == [z85.decode(public).hex()]

"""CURVE keys (CurveZMQ "ironhouse"): the daemon's keypair and the keypairs of the clients it lets in.

    xstreamer keys init DIR                  # DIR/server.key, DIR/server.key_secret, DIR/authorized/
    xstreamer keys client DIR studio         # DIR/clients/studio/ (for that client), its key authorized
    xstreamer serve --host 0.0.0.0 --keys DIR
    Client("tcp://HOST:7570", keys="DIR/clients/studio")        # or keys=ClientKeys.load(...)

Layout of DIR (files written by pyzmq's `zmq.auth.create_certificates`; secret files are readable by the owner
only):

    server.key, server.key_secret          the daemon's keypair (server.key is public: each client has a copy)
    authorized/NAME.key                    public keys of the clients the daemon accepts (ironhouse)
    clients/NAME/server.key                a client's bundle: the daemon's public key,
    clients/NAME/client.key, client.key_secret      and that client's own keypair

Removing `authorized/NAME.key` (and restarting the daemon) locks that client out.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
import zmq.auth

from sdk.protocol.errors import XStreamerError

SERVER = "server"
CLIENT = "client"
AUTHORIZED = "authorized"
CLIENTS = "clients"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class KeysError(XStreamerError):
    """Keys missing, unreadable or malformed, a bad client name, or a libzmq built without CURVE."""


def curve_available() -> bool:
    """Whether this libzmq can do CURVE (it is built with libsodium or its own tweetnacl)."""
    return bool(zmq.has("curve"))


def _require_curve() -> None:
    if not curve_available():
        raise KeysError(f"this libzmq ({zmq.zmq_version()}) has no CURVE support")


def _load(path: Path, need_secret: bool) -> tuple[bytes, bytes | None]:
    if not path.is_file():
        raise KeysError(f"key file {path} does not exist")
    try:
        public, secret = zmq.auth.load_certificate(str(path))
    except Exception as exc:  # pyzmq raises ValueError/OSError/… for a bad file
        raise KeysError(f"key file {path} is not a CURVE certificate: {exc}") from None
    if need_secret and not secret:
        raise KeysError(f"key file {path} holds no secret key")
    if len(public) != 40 or (secret is not None and len(secret) != 40):
        raise KeysError(f"key file {path} does not hold Z85 CURVE keys")
    return public, secret


@dataclass(frozen=True)
class ClientKeys:
    """What a client needs to connect to a daemon that runs with --keys: the daemon's public key and the
    client's own keypair (Z85, 40 bytes each)."""

    server_public: bytes
    public: bytes
    secret: bytes

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> "ClientKeys":
        """Read a client bundle made by `xstreamer keys client` (KeysError when incomplete)."""
        d = Path(folder)
        server_public, _ = _load(d / f"{SERVER}.key", need_secret=False)
        public, secret = _load(d / f"{CLIENT}.key_secret", need_secret=True)
        assert secret is not None
        return cls(server_public, public, secret)

    @classmethod
    def coerce(cls, keys: "ClientKeys | str | os.PathLike[str] | None") -> "ClientKeys | None":
        """A ClientKeys from itself, a bundle folder, or None."""
        if keys is None or isinstance(keys, ClientKeys):
            return keys
        return cls.load(keys)

    def apply(self, sock: zmq.Socket[Any]) -> None:
        """Make `sock` (before connect) a CURVE client of the daemon."""
        _require_curve()
        sock.curve_serverkey = self.server_public
        sock.curve_publickey = self.public
        sock.curve_secretkey = self.secret


@dataclass(frozen=True)
class ServerKeys:
    """The daemon's keypair and the folder of the client public keys it accepts."""

    public: bytes
    secret: bytes
    authorized: Path

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> "ServerKeys":
        d = Path(folder)
        public, secret = _load(d / f"{SERVER}.key_secret", need_secret=True)
        assert secret is not None
        authorized = d / AUTHORIZED
        if not authorized.is_dir() or not any(authorized.glob("*.key")):
            raise KeysError(f"{authorized} lists no client keys: add one with "
                            f"`xstreamer keys client {d} NAME`")
        return cls(public, secret, authorized)

    def apply(self, sock: zmq.Socket[Any]) -> None:
        """Make `sock` (before bind) a CURVE server."""
        _require_curve()
        sock.curve_secretkey = self.secret
        sock.curve_publickey = self.public
        sock.curve_server = True


def _private(path: Path) -> None:
    try:
        os.chmod(path, 0o600)
    except OSError:   # (a file system without modes)
        pass


def create_server_keys(folder: str | os.PathLike[str]) -> Path:
    """Make DIR/server.key(+_secret) and DIR/authorized/ (KeysError if a server key is already there)."""
    _require_curve()
    d = Path(folder)
    if (d / f"{SERVER}.key_secret").exists():
        raise KeysError(f"{d} already holds a server key; remove it first to make a new one")
    d.mkdir(parents=True, exist_ok=True)
    (d / AUTHORIZED).mkdir(exist_ok=True)
    _, secret = zmq.auth.create_certificates(str(d), SERVER)
    _private(Path(secret))
    return d


def create_client_keys(folder: str | os.PathLike[str], name: str) -> Path:
    """Make a keypair for client `name`, authorize its public key, and write its bundle folder
    DIR/clients/NAME (server.key, client.key, client.key_secret). Returns the bundle folder."""
    _require_curve()
    if not _NAME.match(name):
        raise KeysError(f"client name {name!r}: use letters, digits, '.', '_' or '-' (at most 64)")
    d = Path(folder)
    _load(d / f"{SERVER}.key", need_secret=False)
    bundle = d / CLIENTS / name
    if bundle.exists():
        raise KeysError(f"{bundle} exists; remove it (and {d / AUTHORIZED / (name + '.key')}) to make new "
                        f"keys")
    bundle.mkdir(parents=True)
    public, secret = zmq.auth.create_certificates(str(bundle), CLIENT)
    _private(Path(secret))
    shutil.copyfile(d / f"{SERVER}.key", bundle / f"{SERVER}.key")
    (d / AUTHORIZED).mkdir(exist_ok=True)
    shutil.copyfile(public, d / AUTHORIZED / f"{name}.key")
    return bundle


__all__ = ["ClientKeys", "KeysError", "ServerKeys", "create_client_keys", "create_server_keys",
           "curve_available"]

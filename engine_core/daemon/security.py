"""Who may talk to the daemon: loopback by default; off loopback only with CURVE keys (or a loud --insecure).

`serve_policy(host, keys_dir, insecure)` decides before anything binds; `Curve` runs pyzmq's ZAP
authenticator ("ironhouse": only the client public keys in the keys folder's authorized/ get in) and makes the
ROUTER and the XPUB CURVE servers. See docs/security.md.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
from zmq.auth.thread import ThreadAuthenticator

from sdk.keys import KeysError, ServerKeys

log = logging.getLogger("xstreamer.daemon.security")

INSECURE_WARNING = ("--insecure: serving plain ZeroMQ (no encryption, no authentication) on {host}: anyone "
                    "who can reach this address can open sessions, make the avatar say anything and use the "
                    "model")


class ServePolicyError(ValueError):
    """`serve` refuses to start with these options (the message says what to do)."""


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and names that resolve only to them (localhost)."""
    h = host.strip("[]")
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        pass
    if h in ("*", ""):
        return False
    try:
        infos = socket.getaddrinfo(h, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0].split("%")[0]).is_loopback for i in infos)


@dataclass(frozen=True)
class Policy:
    """How the sockets are secured: `keys` (CURVE) or none; `insecure` when off loopback without keys."""

    keys: ServerKeys | None
    insecure: bool = False


def serve_policy(host: str, keys_dir: str | Path | None, insecure: bool) -> Policy:
    """The policy for `serve --host HOST [--keys DIR] [--insecure]` (ServePolicyError: must not start)."""
    if keys_dir is not None:
        try:
            return Policy(ServerKeys.load(keys_dir))
        except KeysError as exc:
            raise ServePolicyError(f"--keys {keys_dir}: {exc}") from None
    if is_loopback(host):
        return Policy(None)
    if not insecure:
        raise ServePolicyError(
            f"refusing to serve on {host} without keys: off loopback the daemon needs CURVE keys "
            f"(`xstreamer keys init DIR`, `xstreamer keys client DIR NAME`, then `serve --keys DIR`), "
            f"or --insecure to serve plain ZeroMQ to anyone who can reach {host}")
    log.warning(INSECURE_WARNING.format(host=host))
    return Policy(None, insecure=True)


class Curve:
    """The ZAP authenticator of a context (ironhouse) and the CURVE server options of its sockets."""

    def __init__(self, ctx: zmq.Context[Any], keys: ServerKeys):
        self.keys = keys
        self.auth = ThreadAuthenticator(ctx, log=logging.getLogger("xstreamer.daemon.zap"))
        self.auth.start()
        self.auth.configure_curve(domain="*", location=str(keys.authorized))
        log.info("CURVE on: %d authorized client key(s) in %s", len(list(keys.authorized.glob("*.key"))),
                 keys.authorized)

    def secure(self, sock: zmq.Socket[Any]) -> None:
        """Make `sock` (before bind) a CURVE server."""
        self.keys.apply(sock)

    def stop(self) -> None:
        self.auth.stop()

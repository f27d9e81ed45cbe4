"""`xstreamer keys`: the CURVE keys a daemon serves off loopback with (see sdk/keys.py, docs/security.md).

    xstreamer keys init DIR              # the daemon's keypair (DIR/server.key(_secret)), DIR/authorized/
    xstreamer keys client DIR NAME       # a client's keypair, authorized; give it DIR/clients/NAME/
    xstreamer serve --host 0.0.0.0 --keys DIR
    xstreamer say "Hi." --out hi.mp4 --connect tcp://HOST:7570 --keys DIR/clients/NAME

Exit codes: 0 ok, 1 refused (`error: ...` on stderr), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    init = sub.add_parser("init", help="make the daemon's keypair and an empty authorized/ folder")
    init.add_argument("dir", help="the keys folder (created)")
    client = sub.add_parser("client", help="make a client's keypair, authorize it, write its bundle folder")
    client.add_argument("dir", help="the keys folder made by `init`")
    client.add_argument("name", help="the client's name (letters, digits, '.', '_', '-')")


def run(args: argparse.Namespace) -> int:
    from sdk.keys import KeysError, create_client_keys, create_server_keys

    try:
        if args.keys_command == "init":
            d = create_server_keys(args.dir)
            print(f"server keys in {d} (keep server.key_secret private); add clients with "
                  f"`xstreamer keys client {d} NAME`")
        else:
            bundle = create_client_keys(args.dir, args.name)
            print(f"client {args.name!r}: authorized; give the folder {bundle} to that client "
                  f"(--keys {bundle} / Client(..., keys={str(bundle)!r}))")
    except KeysError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0

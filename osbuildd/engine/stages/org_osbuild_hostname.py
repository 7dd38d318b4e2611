"""org.osbuild.hostname: write /etc/hostname.

Upstream's stage lets systemd-firstboot check the name; the same rule is applied here (the schema's
pattern cannot refuse a trailing newline: Python's ``$`` matches before one)."""

from __future__ import annotations

from osbuildd.common.names import hostname_error
from osbuildd.engine.stageapi import StageArgs


def main(args: StageArgs) -> int:
    name = args.options["hostname"]
    err = hostname_error(name)
    if err is not None:
        print(f"Host name {name!r} is not valid: {err}")
        return 1
    # systemd-firstboot writes the name without its trailing dot
    args.tree_root().write_text("/etc/hostname", name.rstrip(".") + "\n")  # openat2 in the tree
    print(f"{args.tree_path('/etc/hostname')} written.")
    return 0

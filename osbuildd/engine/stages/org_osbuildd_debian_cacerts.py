"""org.osbuildd.debian.cacerts: add CA certificates to a Debian tree's trust store.

Each certificate becomes /usr/local/share/ca-certificates/<name>.crt (the directory Debian keeps for
local CAs), then update-ca-certificates runs in the tree so /etc/ssl/certs/ca-certificates.crt and the
hashed links in /etc/ssl/certs include it. Needs the `ca-certificates` package in the tree.
"""

from __future__ import annotations

import os

from osbuildd.engine.stageapi import StageArgs, chroot_run

LOCAL_DIR = "/usr/local/share/ca-certificates"
BEGIN, END = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"


def main(args: StageArgs) -> int:
    certs = args.options["certificates"]
    # the manifest generator checked these with a real parser; here only what a hand-written manifest
    # could get wrong, since update-ca-certificates would silently bundle garbage
    for i, cert in enumerate(certs):
        pem = cert["pem"]
        if BEGIN not in pem or END not in pem:
            print(f"options.certificates[{i}].pem: not a PEM certificate")
            return 1
    if not os.path.exists(args.tree_path("/usr/sbin/update-ca-certificates")):
        print("update-ca-certificates is missing: the image needs the 'ca-certificates' package")
        return 1
    root = args.tree_root()  # openat2 in the tree
    root.makedirs(LOCAL_DIR, mode=0o755)
    for cert in certs:
        path = f"{LOCAL_DIR}/{cert['name']}.crt"
        pem = cert["pem"].replace("\r\n", "\n")
        root.write_bytes(path, (pem if pem.endswith("\n") else pem + "\n").encode("ascii"))
        root.chmod(path, 0o644)
        print(f"{LOCAL_DIR}/{cert['name']}.crt written.")
    chroot_run(args.tree, ["update-ca-certificates"])
    return 0

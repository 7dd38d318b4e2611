"""org.osbuild.machine-id: first-boot semantics of /etc/machine-id.

yes: "uninitialized" (systemd runs first-boot units); no: empty (an id is made at boot, no first boot);
preserve: keep the file as it is (it must exist)."""

from __future__ import annotations

import os

from osbuildd.engine.stageapi import StageArgs


def main(args: StageArgs) -> int:
    mode = args.options["first-boot"]
    path = args.tree_path("/etc/machine-id")
    if mode == "preserve":
        if not os.path.exists(path):
            print("/etc/machine-id does not exist, cannot preserve it")
            return 1
        return 0
    with open(path, "w", encoding="utf-8") as f:
        f.write("uninitialized\n" if mode == "yes" else "")
    os.chmod(path, 0o444)
    return 0

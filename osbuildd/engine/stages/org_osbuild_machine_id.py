"""org.osbuild.machine-id: first-boot semantics of /etc/machine-id.

yes: "uninitialized" (systemd runs first-boot units); no: empty (an id is made at boot, no first boot);
preserve: keep the file as it is (it must exist)."""

from __future__ import annotations

from osbuildd.engine.stageapi import StageArgs


def main(args: StageArgs) -> int:
    mode = args.options["first-boot"]
    root = args.tree_root()  # openat2 in the tree
    if mode == "preserve":
        if not root.exists("/etc/machine-id"):
            print("/etc/machine-id does not exist, cannot preserve it")
            return 1
        return 0
    root.write_text("/etc/machine-id", "uninitialized\n" if mode == "yes" else "", mode=0o444)
    root.chmod("/etc/machine-id", 0o444)
    return 0

"""org.osbuild.mkfs.ext4: make an ext4 file system on the `device`."""

from __future__ import annotations

from osbuildd.engine.stageapi import StageArgs, run


def main(args: StageArgs) -> int:
    o = args.options
    cmd = ["mkfs.ext4", "-F", "-U", o["uuid"]]
    if "label" in o:
        cmd += ["-L", o["label"]]
    if "lazy_init" in o:
        v = 1 if o["lazy_init"] else 0
        cmd += ["-E", f"lazy_itable_init={v},lazy_journal_init={v}"]
    features = []
    for key, feature in (("metadata_csum_seed", "metadata_csum_seed"), ("orphan_file", "orphan_file"),
                         ("verity", "verity")):
        if key in o:
            features.append(feature if o[key] else "^" + feature)
    if features:
        cmd += ["-O", ",".join(features)]
    run(cmd + [args.devices["device"]["path"]])
    return 0

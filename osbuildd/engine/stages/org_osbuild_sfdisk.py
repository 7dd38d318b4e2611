"""org.osbuild.sfdisk: write a dos or gpt partition table to the `device`."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from osbuildd.engine.stageapi import StageArgs

KEYS = (("start", "start"), ("size", "size"), ("type", "type"), ("uuid", "uuid"))
ATTR_NAMES = {0: "RequiredPartition", 1: "NoBlockIOProtocol", 2: "LegacyBIOSBootable"}


def attr(bit: int) -> str:
    return ATTR_NAMES.get(bit) or f"GUID:{bit}"


def script(options: dict[str, Any]) -> str:
    label = options["label"]
    lines = [f"label: {'dos' if label == 'mbr' else label}", f"label-id: {options['uuid']}", "unit: sectors", ""]
    for part in options.get("partitions", []):
        fields = [f"{k}={part[src]}" for src, k in KEYS if src in part]
        if "name" in part:
            fields.append(f'name="{part["name"]}"')
        if part.get("bootable"):
            fields.append("bootable")
        if part.get("attrs"):
            fields.append('attrs="' + " ".join(attr(a) for a in part["attrs"]) + '"')
        prefix = f"p{part['partnum']} : " if "partnum" in part else ""
        lines.append(prefix + ", ".join(fields))
    return "\n".join(lines) + "\n"


def main(args: StageArgs) -> int:
    device = args.devices["device"]["path"]
    text = script(args.options)
    print(text, flush=True)
    subprocess.run(["sfdisk", "--no-tell-kernel", "--no-reread", "-q", device], input=text.encode(),
                   stdout=sys.stdout, stderr=sys.stderr, check=True)
    subprocess.run(["sfdisk", "--dump", device], stdout=sys.stdout, stderr=sys.stderr, check=True)
    return 0

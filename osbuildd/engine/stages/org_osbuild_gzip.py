"""org.osbuild.gzip: gzip-compress the `file` input."""

from __future__ import annotations

from osbuildd.engine.stageapi import StageArgs
from osbuildd.engine.stages._compress import compress


def main(args: StageArgs) -> int:
    return compress(args, ["gzip", "-c", "-n", f"-{int(args.options.get('level', 1))}"])

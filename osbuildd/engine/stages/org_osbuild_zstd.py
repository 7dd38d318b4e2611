"""org.osbuild.zstd: zstd-compress the `file` input."""

from __future__ import annotations

from osbuildd.engine.stageapi import StageArgs
from osbuildd.engine.stages._compress import compress


def main(args: StageArgs) -> int:
    return compress(args, ["zstd", "-c", "-T0", "-q"])

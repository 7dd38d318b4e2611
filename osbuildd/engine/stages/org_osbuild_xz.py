"""org.osbuild.xz: xz-compress the `file` input."""

from __future__ import annotations

from osbuildd.engine.stageapi import StageArgs
from osbuildd.engine.stages._compress import compress


def main(args: StageArgs) -> int:
    return compress(args, ["xz", "-c", "-T0", "--keep"])

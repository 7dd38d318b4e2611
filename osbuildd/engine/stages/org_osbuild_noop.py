"""org.osbuild.noop: does nothing (its options only change the stage id)."""

from __future__ import annotations

from osbuildd.engine.stageapi import StageArgs


def main(args: StageArgs) -> int:
    return 0

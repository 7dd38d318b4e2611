"""org.osbuild.error: fail on purpose with the given return code (for tests)."""

from __future__ import annotations

from osbuildd.engine.stageapi import StageArgs


def main(args: StageArgs) -> int:
    rc = int(args.options.get("returncode", 255))
    print(f"Error stage will now return error: {rc}")
    return rc

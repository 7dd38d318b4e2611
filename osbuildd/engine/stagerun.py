"""Runs one stage: ``python3 -m osbuildd.engine.stagerun <stage-type> <args.json>``.

This runs in the stage sandbox (``bwrap.py``) with the ``/usr/bin/python3`` of its root (the build
pipeline's tree, or the host's), so it imports nothing but the standard library and
``osbuildd.engine.stageapi`` + the stage module.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import traceback


def module_name(stage_type: str) -> str:
    return "osbuildd.engine.stages." + stage_type.replace(".", "_").replace("-", "_")


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: python3 -m osbuildd.engine.stagerun <stage-type> <args.json>", file=sys.stderr)
        return 2
    from osbuildd.engine.stageapi import StageArgs

    stage_type, args_path = argv[1], argv[2]
    args = StageArgs.load(args_path)
    os.umask(0o022)
    if args.source_epoch is not None:
        os.environ["SOURCE_DATE_EPOCH"] = str(args.source_epoch)
    # stage output is the build log; keep it flowing line by line
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    try:
        mod = importlib.import_module(module_name(stage_type))
    except ImportError as e:
        print(f"stage {stage_type} not found: {e}", file=sys.stderr)
        return 127
    try:
        rc = mod.main(args)
    except SystemExit as e:
        code = e.code
        if isinstance(code, int) or code is None:
            return code or 0
        # SystemExit("message"), as stages use for a clear error: the message is the stage's log
        print(code, file=sys.stderr, flush=True)
        return 1
    except subprocess.CalledProcessError as e:
        # the command's own output is already in the log above: say which command failed, not where
        cmd = " ".join(str(a) for a in e.cmd) if isinstance(e.cmd, list) else str(e.cmd)
        print(f"{stage_type}: command failed with exit status {e.returncode}: {cmd}", file=sys.stderr, flush=True)
        return 1
    except OSError as e:
        # a path the manifest named could not be used (missing, outside the tree, ...): one line naming it
        where = f": {e.filename!r}" if e.filename else ""
        print(f"{stage_type}: {e.strerror or e}{where}", file=sys.stderr, flush=True)
        return 1
    except BaseException:
        traceback.print_exc()
        return 1
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv))

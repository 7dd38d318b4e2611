"""Runs osbuild (upstream or the bundled engine) and turns its monitor stream into progress and logs."""

from .cleanup import cleanup_under, dead_scratch_dirs, kill_marked
from .monitor import MonitorError, MonitorEvent, MonitorParser, Progress
from .progress import ProgressSink
from .result import FailedStage, ResultKind
from .run import OSBuildNotFound, OSBuildResult, resolve_osbuild, result_summary, run_osbuild
from .stream import LogSink

__all__ = [
    "FailedStage", "LogSink", "MonitorError", "MonitorEvent", "MonitorParser", "OSBuildNotFound", "OSBuildResult",
    "Progress", "ProgressSink", "ResultKind", "cleanup_under", "dead_scratch_dirs", "kill_marked", "resolve_osbuild", "result_summary",
    "run_osbuild",
]

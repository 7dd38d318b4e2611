"""Runs osbuild (upstream or the bundled engine) and turns its monitor stream into progress and logs."""

from .cleanup import cleanup_under, kill_marked
from .monitor import MonitorError, MonitorEvent, MonitorParser, Progress
from .run import OSBuildNotFound, OSBuildResult, resolve_osbuild, result_summary, run_osbuild

__all__ = [
    "MonitorError", "MonitorEvent", "MonitorParser", "OSBuildNotFound", "OSBuildResult", "Progress",
    "cleanup_under", "kill_marked", "resolve_osbuild", "result_summary", "run_osbuild",
]

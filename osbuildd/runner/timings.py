"""Per-stage timings of one build (issue 13): taken from the ``--json`` result, else from the stream.

The bundled engine's result carries ``timings`` (sources, stages, pipelines, total). A build without a
result (crash, cancel, stage timeout) or run by an osbuild without them still has the monitor
stream's finished-module records (``duration`` and ``timestamp``, upstream's fields): from those the
same shape is rebuilt, marked ``"origin": "monitor"``. ``table()`` renders it for people (``osbuildd
build --verbose``, bench/engine.py).
"""

from __future__ import annotations

from typing import Any

from .monitor import MonitorParser

Timings = dict[str, Any]
_SPAN = ("started", "finished", "duration")


def _valid(t: object) -> bool:
    return (isinstance(t, dict) and isinstance(t.get("stages"), list) and isinstance(t.get("pipelines"), list)
            and isinstance(t.get("sources"), list) and isinstance(t.get("total"), int | float))


def _span(mod: dict[str, Any]) -> dict[str, float | None]:
    t = mod.get("timings")
    if isinstance(t, dict) and all(isinstance(t.get(k), int | float) for k in _SPAN):
        return {k: float(t[k]) for k in _SPAN}
    ts, duration = mod.get("timestamp"), float(mod["duration"])
    # upstream's record is written when the module has finished: it started ``duration`` before
    return {"started": ts - duration if ts is not None else None, "finished": ts, "duration": duration}


def _counts(results: list[Any] | None) -> tuple[int | None, int | None]:
    if results is None:
        return None, None
    cached = [bool((r.get("metadata") or {}).get("cached")) for r in results if isinstance(r, dict)]
    return len(cached) - sum(cached), sum(cached)


def from_monitor(parser: MonitorParser, total: float) -> Timings:
    """The timings the stream gave: stages and sources as they finished, pipelines from their stages
    (which pipelines came whole from the store the stream does not say)."""
    sources: list[dict[str, Any]] = []
    stages: list[dict[str, Any]] = []
    for mod in parser.finished_modules:
        if mod["source"]:
            fetched, cached = _counts(mod.get("results"))
            sources.append({"type": mod["type"], **_span(mod), "fetched": fetched, "cached": cached,
                            "success": mod["success"]})
        else:
            stages.append({"pipeline": mod["pipeline"], "id": mod["id"], "type": mod["type"], **_span(mod)})
    ids = {m["id"]: m.get("pipeline_id") for m in parser.finished_modules if not m["source"]}
    pipelines: dict[str, dict[str, Any]] = {}
    for st in stages:
        p = pipelines.setdefault(st["pipeline"] or "?", {"name": st["pipeline"], "id": ids.get(st["id"]),
                                                        "started": st["started"], "finished": st["finished"],
                                                        "duration": 0.0, "cached": False})
        p["finished"] = st["finished"]
        p["duration"] += st["duration"]
    # the runner's clock, but never less than what the stream says ran (shares stay <= 100 %)
    spans = [m for m in sources + stages if m["started"] is not None and m["finished"] is not None]
    if spans:
        total = max(total, max(m["finished"] for m in spans) - min(m["started"] for m in spans))
    total = max(total, sum(m["duration"] for m in sources + stages))
    return {"sources": sources, "stages": stages, "pipelines": list(pipelines.values()), "total": total,
            "origin": "monitor"}


def collect(output: dict[str, Any] | None, parser: MonitorParser, total: float) -> Timings | None:
    """The build's timings: the result's when it has them, else the stream's; None when neither
    timed anything (osbuild did not get as far as a source or stage)."""
    if output is not None and _valid(output.get("timings")):
        return {**output["timings"], "origin": "result"}
    if not parser.finished_modules:
        return None
    return from_monitor(parser, total)


def _share(seconds: float, total: float) -> str:
    return f"{100.0 * seconds / total:5.1f}%" if total > 0 else "    -"


def _source_line(src: dict[str, Any]) -> str:
    what = src.get("type") or "?"
    if src.get("fetched") is not None:
        what += f" ({src['fetched']} fetched, {src.get('cached') or 0} cached)"
    return what


def _stage_row(pipeline: str, st: dict[str, Any], total: float) -> tuple[str, str, str, str]:
    return pipeline, str(st.get("type")), f"{float(st['duration']):.1f}", _share(float(st["duration"]), total)


def table(t: Timings) -> list[str]:
    """Lines of a per-stage table: pipeline, stage type, seconds, share of the total; the source
    fetches first, pipelines taken whole from the store as one line each, the total last."""
    total = float(t.get("total") or 0.0)
    rows: list[tuple[str, str, str, str]] = []
    starts = [float(st["started"]) for st in t.get("stages") or [] if st.get("started") is not None]
    for src in t.get("sources") or []:
        what = _source_line(src)
        if starts and src.get("finished") is not None and float(src["finished"]) > min(starts):
            what += ", overlapping the stages"   # the engine fetches while the pipelines run
        rows.append(("sources", what, f"{float(src.get('duration') or 0):.1f}",
                     _share(float(src.get("duration") or 0), total)))
    by_pipeline: dict[str, list[dict[str, Any]]] = {}
    for st in t.get("stages") or []:
        by_pipeline.setdefault(str(st.get("pipeline")), []).append(st)
    listed: set[str] = set()
    for p in t.get("pipelines") or []:
        name = str(p.get("name"))
        listed.add(name)
        if p.get("cached"):
            rows.append((name, "(from the store)", "-", "-"))
            continue
        if p.get("resumed"):
            rows.append((name, f"({p['resumed']} stages from a checkpoint)", "-", "-"))
        rows += [_stage_row(name, st, total) for st in by_pipeline.get(name, [])]
    for name, sts in by_pipeline.items():   # stages of a pipeline the list does not name
        if name not in listed:
            rows += [_stage_row(name, st, total) for st in sts]
    rows.append(("total", "", f"{total:.1f}", _share(total, total)))
    w0 = max(len("pipeline"), *(len(r[0]) for r in rows))
    w1 = max(len("stage"), *(len(r[1]) for r in rows))
    w2 = max(len("seconds"), *(len(r[2]) for r in rows))
    lines = [f"{'pipeline':<{w0}}  {'stage':<{w1}}  {'seconds':>{w2}}  {'share':>6}"]
    lines += [f"{a:<{w0}}  {b:<{w1}}  {c:>{w2}}  {d:>6}" for a, b, c, d in rows]
    return lines

"""image-builder's build quotas (QUOTA_FILE): osbuildd.imagebuilder.quotas."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from testdata import data_file

from osbuildd.imagebuilder.quotas import (
    DEFAULT_QUOTA,
    DEFAULT_SLIDING_WINDOW,
    NS_PER_SECOND,
    QuotaExceeded,
    QuotaFile,
    QuotaFileError,
    Quotas,
)

DAY_NS = 24 * 3600 * NS_PER_SECOND


def upstream_file() -> dict[str, dict[str, int]]:
    data: dict[str, dict[str, int]] = json.loads(data_file("imagebuilder", "quotas.json").read_text())
    return data


def test_per_org_and_default_entries() -> None:
    raw = upstream_file()
    quotas = Quotas.load(data_file("imagebuilder", "quotas.json"))
    for org in ("000000", "000001", "someone-else"):
        entry = raw.get(org, raw["default"])
        q = quotas.quota_for(org)
        assert (q.quota, q.sliding_window_ns) == (entry["quota"], entry["slidingWindow"])
        assert q.window_seconds == entry["slidingWindow"] / NS_PER_SECOND
        days = entry["slidingWindow"] // DAY_NS
        for used in range(0, entry["quota"] + 2):
            result = quotas.check(org, used)
            assert result.ok == (used < entry["quota"])
            assert (result.limit, result.used, result.window_days) == (entry["quota"], used, days)
            assert result.message == f"Quota of {entry['quota']} builds per {days} days exceeded for user"


def test_quota_zero_refuses_every_build() -> None:
    quotas = Quotas.load(data_file("imagebuilder", "quotas.json"))
    assert upstream_file()["000001"]["quota"] == 0
    assert not quotas.check("000001", 0).ok


def test_enforce_raises_upstreams_403() -> None:
    quotas = Quotas.parse(json.dumps({"org": {"quota": 2, "slidingWindow": 14 * DAY_NS}}))
    assert quotas.enforce("org", 1).ok
    with pytest.raises(QuotaExceeded) as exc:
        quotas.enforce("org", 2)
    assert exc.value.status == 403
    assert str(exc.value) == "Quota of 2 builds per 14 days exceeded for user"
    assert exc.value.result.used == 2


def test_org_missing_and_no_default_gets_upstreams_constants() -> None:
    quotas = Quotas.parse(json.dumps({"org": {"quota": 1, "slidingWindow": DAY_NS}}))
    q = quotas.quota_for("other")
    assert (q.quota, q.window_seconds) == (DEFAULT_QUOTA, DEFAULT_SLIDING_WINDOW)
    assert (DEFAULT_QUOTA, DEFAULT_SLIDING_WINDOW) == (100, 14 * 24 * 3600)
    assert quotas.check("other", 99).ok and not quotas.check("other", 100).ok
    assert quotas.check("other", 100).message == "Quota of 100 builds per 14 days exceeded for user"


def test_window_days_are_whole_days() -> None:
    quotas = Quotas.parse(json.dumps({"default": {"quota": 1, "slidingWindow": 36 * 3600 * NS_PER_SECOND}}))
    assert quotas.check("x", 5).message == "Quota of 1 builds per 1 days exceeded for user"
    # missing fields are zero, as Go's decoder leaves them: no builds, a zero-length window
    empty = Quotas.parse('{"default": {}}').quota_for("x")
    assert (empty.quota, empty.sliding_window_ns) == (0, 0)


@pytest.mark.parametrize("text", ["{", "[]", '{"org": 3}', '{"org": {"quota": 1.5, "slidingWindow": 1}}',
                                  '{"org": {"quota": true, "slidingWindow": 1}}',
                                  '{"org": {"quota": 1, "slidingWindow": "14d"}}'])
def test_malformed_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "quotas.json"
    path.write_text(text)
    with pytest.raises(QuotaFileError, match=f'^failed to unmarshal quota file "{path}"') as exc:
        Quotas.load(path)
    assert exc.value.status == 500


async def test_quota_file_setting(tmp_path: Path) -> None:
    assert await QuotaFile("").get() is None and not QuotaFile("").enabled
    path = tmp_path / "quotas.json"
    qf = QuotaFile(path)
    with pytest.raises(QuotaFileError, match=f"^no config file for quotas found at {path}$"):
        await qf.get()
    path.write_text(json.dumps({"org": {"quota": 1, "slidingWindow": DAY_NS}}))
    first = await qf.get()
    assert first is not None and first.quota_for("org").quota == 1
    assert await qf.get() is first            # unchanged: not read again
    path.write_text(json.dumps({"org": {"quota": 25, "slidingWindow": DAY_NS}}))
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    second = await qf.get()
    assert second is not None and second is not first and second.quota_for("org").quota == 25

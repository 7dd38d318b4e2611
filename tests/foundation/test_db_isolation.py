"""A read on the shared Database never sees another task's uncommitted transaction."""

from __future__ import annotations

import asyncio

from osbuildd.queue import Database


async def count(db: Database) -> int:
    async with db.conn.execute("SELECT count(*) FROM probe") as cur:
        return (await cur.fetchone())[0]


async def test_reader_sees_only_committed_rows(tmp_path):
    db = await Database.open(tmp_path / "osbuildd.db")
    try:
        async with db.transaction() as conn:
            await conn.execute("CREATE TABLE probe (v INTEGER)")
        inserted, release = asyncio.Event(), asyncio.Event()

        async def writer(fail: bool) -> None:
            async with db.transaction():
                await db.conn.execute("INSERT INTO probe VALUES (1)")
                assert await count(db) == 1 + committed[0]   # the writer reads its own row
                inserted.set()
                await release.wait()
                if fail:
                    raise RuntimeError("rolled back")

        committed = [0]
        task = asyncio.create_task(writer(fail=False))
        await inserted.wait()
        # another task, mid-transaction: not the uncommitted row, and no waiting for the lock
        assert await asyncio.wait_for(count(db), 2) == 0
        assert await asyncio.wait_for(db.conn.execute_fetchall("SELECT v FROM probe"), 2) == []
        release.set()
        await task
        assert await count(db) == 1
        committed[0] = 1

        inserted.clear(), release.clear()
        task = asyncio.create_task(writer(fail=True))
        await inserted.wait()
        assert await count(db) == 1
        release.set()
        try:
            await task
        except RuntimeError:
            pass
        assert await count(db) == 1   # the rollback left no trace
        assert not db.writer.in_transaction
    finally:
        await db.close()

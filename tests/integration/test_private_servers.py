"""The private servers of tests/faults.py really start, stop and come back (fault tests rely on them)."""
import asyncio, asyncpg, redis.asyncio as r
async def test_private(private_redis, private_postgres, private_kafka):
    c = r.from_url(private_redis.url); assert await c.ping()
    conn = await asyncpg.connect(private_postgres.dsn); assert await conn.fetchval("select 1") == 1; await conn.close()
    private_postgres.stop()
    try:
        await asyncpg.connect(private_postgres.dsn, timeout=2); assert False
    except OSError: pass
    private_postgres.start()
    conn = await asyncpg.connect(private_postgres.dsn); await conn.close()
    private_kafka.pause(); private_kafka.resume()

"""The Redis client every Redis-backed part shares: one Redis, or a Redis Cluster.

Only the connection differs. The stores, the rate limiter, the revocations and the
cross-instance messages are the same classes on both, and stay inside one hash slot
wherever a script, a transaction or an ``MGET`` touches several keys (``{user_id}`` tags).
redis-py's cluster client routes each command to the master of its key's slot, splits
pipelines by node, loads scripts on every master, and follows the cluster when slots move
or a replica takes over.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode

from reelhouse.config import RedisSettings

#: Either client: the Redis-backed parts accept both.
RedisClient = Redis | RedisCluster


@dataclass(frozen=True)
class RedisLimits:
    #: Connections per process (per cluster node on a cluster).
    max_connections: int
    #: How long a command waits for a free connection (one Redis; a cluster client fails at once).
    pool_timeout_seconds: float
    socket_timeout_seconds: float
    connect_timeout_seconds: float
    health_check_interval_seconds: float = 30


def connect_redis(settings: RedisSettings, limits: RedisLimits) -> RedisClient:
    """A client for REDIS_URL (which must be set); connections open on first use."""
    target = settings.target
    timeouts = {
        "socket_timeout": limits.socket_timeout_seconds,
        "socket_connect_timeout": limits.connect_timeout_seconds,
        "health_check_interval": limits.health_check_interval_seconds,
    }
    if target.cluster:
        return RedisCluster.from_url(
            target.url,
            # The first node is in the URL; the others are tried when it does not answer.
            startup_nodes=[ClusterNode(host, port) for host, port in target.nodes[1:]],
            max_connections=limits.max_connections,
            **timeouts,
        )
    return Redis.from_pool(
        BlockingConnectionPool.from_url(
            target.url, max_connections=limits.max_connections, timeout=limits.pool_timeout_seconds, **timeouts
        )
    )


async def redis_answers(client: RedisClient) -> None:
    """Raise unless Redis answers: on a cluster every master must, or some users' keys are out of reach."""
    if isinstance(client, RedisCluster):
        await client.ping(target_nodes=RedisCluster.PRIMARIES)
    else:
        await client.ping()

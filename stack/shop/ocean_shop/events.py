"""Order status changes over Redis pub/sub, fanned out to this process's WebSockets.

Every instance publishes the changes it makes to one channel and listens to
it with one subscription, so a shopper connected to blue sees a change made
through green. Pub/sub is fire-and-forget: a feed that misses a message (Redis
restarting) still starts from the order's current state on reconnect.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

CHANNEL = "shop:order-events"
RECONNECT_DELAY = 0.5
# A feed that stops reading gets dropped messages, not unbounded memory.
QUEUE_SIZE = 32


def message(order_id: int, status: str, reason: str | None) -> bytes:
    return orjson.dumps({"order_id": order_id, "status": status, "reason": reason})


class OrderFeed:
    def __init__(self, redis_url: str, publisher: Redis) -> None:
        # Subscriptions block on reads, so they get a client of their own
        # without the cache's short socket timeout.
        self._subscriber = Redis.from_url(redis_url, socket_connect_timeout=1.0)
        self._publisher = publisher
        self._queues: defaultdict[int, set[asyncio.Queue[bytes]]] = defaultdict(set)
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def publish(self, order_id: int, status: str, reason: str | None = None) -> None:
        try:
            await self._publisher.publish(CHANNEL, message(order_id, status, reason))
        except (RedisError, OSError) as exc:
            log.warning("order %d: status %s not published: %s", order_id, status, exc)

    @staticmethod
    def publish_on(pipe: Pipeline, order_id: int, status: str, reason: str | None = None) -> None:
        """Queue the message on `pipe`, to share a round trip with other writes."""
        pipe.publish(CHANNEL, message(order_id, status, reason))

    async def subscribe(self, order_id: int, timeout: float = 2.0) -> asyncio.Queue[bytes]:
        """A queue of this order's status messages, live once this returns.

        Raises TimeoutError if the Redis subscription is not up within `timeout`.
        """
        if self._listener is None or self._listener.done():
            self._listener = asyncio.create_task(self._listen(), name="order-feed")
        queue: asyncio.Queue[bytes] = asyncio.Queue(QUEUE_SIZE)
        self._queues[order_id].add(queue)
        try:
            async with asyncio.timeout(timeout):
                await self._subscribed.wait()
        except TimeoutError:
            self.unsubscribe(order_id, queue)
            raise
        return queue

    def unsubscribe(self, order_id: int, queue: asyncio.Queue[bytes]) -> None:
        queues = self._queues.get(order_id)
        if queues is not None:
            queues.discard(queue)
            if not queues:
                del self._queues[order_id]

    async def _listen(self) -> None:
        while True:
            try:
                async with self._subscriber.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    async for message in pubsub.listen():
                        if message["type"] == "subscribe":
                            self._subscribed.set()
                        elif message["type"] == "message":
                            self._dispatch(message["data"])
            except (RedisError, OSError) as exc:
                self._subscribed.clear()
                log.warning("order feed lost Redis, reconnecting: %s", exc)
                await asyncio.sleep(RECONNECT_DELAY)

    def _dispatch(self, data: bytes) -> None:
        try:
            order_id = orjson.loads(data)["order_id"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("order feed: ignoring malformed message %r", data[:200])
            return
        for queue in self._queues.get(order_id, ()):
            if queue.full():
                continue  # a stalled client; it will see the state on reconnect
            queue.put_nowait(data)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        await self._subscriber.aclose()

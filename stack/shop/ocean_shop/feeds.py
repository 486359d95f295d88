"""WebSocket /ws/orders/{id}: the order's current state, then every status change.

The first message is the order document; each later one is a change
{"order_id", "status", "reason"} from any instance (Redis pub/sub). The feed
closes (1000) once the order can change no more (shipped or failed), and
with 4404 for an unknown order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from ocean_shop.resources import Resources
from ocean_shop.schemas import INT8_MAX

log = logging.getLogger(__name__)

router = APIRouter()
FINAL = frozenset(("shipped", "failed"))


@router.websocket("/ws/orders/{order_id}")
async def order_feed(websocket: WebSocket, order_id: int) -> None:
    resources: Resources = websocket.app.state.resources
    gauge = websocket.app.state.metrics.websockets_open
    await websocket.accept()
    if not 1 <= order_id <= INT8_MAX:
        await websocket.close(code=4404, reason="no such order")
        return
    gauge.inc()
    queue = None
    try:
        # Subscribe before reading the state: a change made in between then
        # arrives twice (harmless), never not at all.
        try:
            queue = await resources.feed.subscribe(order_id)
        except TimeoutError:
            await websocket.close(code=1011, reason="live updates unavailable")
            return
        document = await resources.orders.document(order_id)
        if document is None:
            await websocket.close(code=4404, reason="no such order")
            return
        await websocket.send_text(document)
        status = orjson.loads(document)["status"]
        if status in FINAL:
            await websocket.close(code=1000)
            return
        # The client sends nothing; reading is how its disconnect is noticed.
        disconnected = asyncio.create_task(wait_for_disconnect(websocket))
        try:
            while True:
                next_change = asyncio.create_task(queue.get())
                done, _ = await asyncio.wait(
                    {next_change, disconnected}, return_when=asyncio.FIRST_COMPLETED
                )
                if disconnected in done:
                    next_change.cancel()
                    return
                message = next_change.result()
                await websocket.send_text(message.decode())
                if orjson.loads(message)["status"] in FINAL:
                    await websocket.close(code=1000)
                    return
        finally:
            disconnected.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await disconnected
    except WebSocketDisconnect:
        pass
    finally:
        if queue is not None:
            resources.feed.unsubscribe(order_id, queue)
        gauge.dec()


async def wait_for_disconnect(websocket: WebSocket) -> None:
    """Return when the client goes away; anything it sends is ignored."""
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass

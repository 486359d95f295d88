"""A JSON response that accepts a ready body or serialises with orjson."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        # Cached product bodies arrive as bytes and are sent untouched.
        if isinstance(content, bytes):
            return content
        return orjson.dumps(content)

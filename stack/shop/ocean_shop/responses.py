"""A JSON response that accepts a ready body or serialises with orjson.

It subclasses Starlette's JSONResponse, not Response: FastAPI documents a route's
`response_model` in /openapi.json only for JSONResponse subclasses (any other
response class is documented as a bare string).
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette import responses


class JSONResponse(responses.JSONResponse):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        # Cached product bodies arrive as bytes and are sent untouched.
        if isinstance(content, bytes):
            return content
        return orjson.dumps(content)

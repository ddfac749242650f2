"""Pure ASGI middleware, one per module, so streaming responses pass through untouched."""

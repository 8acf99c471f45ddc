"""The events tests run on Channels' in-memory layer: they test who receives what, not Redis (which the live
servers and the real tests use)."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def in_memory_layer(settings):  # type: ignore[no-untyped-def]
    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()

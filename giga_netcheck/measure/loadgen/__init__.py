"""Load generation for the load probe: many emulated devices in one asyncio event loop (docs/load.md)."""

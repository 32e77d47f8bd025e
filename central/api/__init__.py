"""HTTP API of the central server (FastAPI routers)."""

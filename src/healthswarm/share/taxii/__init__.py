"""TAXII 2.1: a server (a FastAPI APIRouter over the store) and a client (httpx)."""

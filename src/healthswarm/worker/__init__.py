"""Scaled-out workers: the ingest, detect and correlate stages as processes that share PostgreSQL and NATS
JetStream (`healthswarm worker --role …`). See docs/scale-out.md for the roles and the exactly-once argument."""

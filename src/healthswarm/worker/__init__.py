"""The scale-out deployment of the agent: the ingest, detect and correlate roles as processes that share
PostgreSQL and NATS JetStream (`healthswarm agent run --role …`, alias `healthswarm worker --role …`), running the
same stage objects as the embedded agent (ingest/stage.py, detect/stream_stage.py, detect/correlate_stage.py).
See docs/agent.md ("Scale-out") and docs/scale-out.md for the roles and the exactly-once argument."""

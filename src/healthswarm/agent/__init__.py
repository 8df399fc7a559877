"""The agent: reads agent.toml, builds the stages for the embedded deployment (SQLite, in-memory bus), runs them,
serves health and metrics, and stops gracefully (`healthswarm agent run`; docs/agent.md)."""

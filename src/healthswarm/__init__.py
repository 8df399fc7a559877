"""healthswarm: protects the ICT of healthcare organisations, alone and as a swarm."""

__version__ = "0.1.0"

"""Transport and operational security: TLS contexts, a test CA, rate limits and log redaction."""

"""`genloom serve`: trained runs behind an HTTP API, an OpenAI-compatible text endpoint and a web studio."""

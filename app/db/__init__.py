"""Database access: the shared schema, the async engine and the request-time queries."""

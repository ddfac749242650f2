"""Domain-free building blocks: database, errors, middleware, pagination, logging, metrics."""

"""Documents: uploads, their durable ingestion into the vector store, and their lifecycle."""

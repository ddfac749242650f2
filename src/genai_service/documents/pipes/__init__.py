"""The ingestion pipeline: parse a file to text, tokenize it a window at a time, cut the tokens
into chunks, embed, upsert."""

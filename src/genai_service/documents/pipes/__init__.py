"""The ingestion pipeline: parse a file to text, cut the text into chunks, embed, upsert."""

"""Rate limits and concurrency of the model calls: requests and tokens per minute, calls in
flight, counted behind a storage protocol (`storage`), in memory for one process (`memory`)."""

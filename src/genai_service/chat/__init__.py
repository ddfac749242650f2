"""`GET /chat`: the design source's first endpoint, kept as the simplest possible call."""

"""Guards on the model gateway: limits, budgets, rate limits and the usage ledger."""

"""Authentication: login, token rotation, credentials on every request, and the route guards."""

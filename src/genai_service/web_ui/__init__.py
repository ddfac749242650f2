"""The web chat page at `/ui`: static files from the package's `web/` folder, no build step."""

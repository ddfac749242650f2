"""The caller-aware model gateway: every model call passes here with its caller and purpose."""

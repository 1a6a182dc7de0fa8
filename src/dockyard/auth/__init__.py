"""Authentication (who is asking) and authorization (what they may do)."""

"""Recommendations with their reasons: the motivations of user and item that match best."""

"""Solvers: each takes validated arrays and returns raw results; the API layer wraps them."""

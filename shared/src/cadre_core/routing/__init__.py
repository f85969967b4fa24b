"""A role's route as composable models: each concern is a `Model` wrapping a `Model` (see compose.py)."""

"""HTTP service of a trained run: `create_app(recommender, settings)` (FastAPI)."""

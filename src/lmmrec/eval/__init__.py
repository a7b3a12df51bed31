"""Full-ranking evaluation: chunked top-k (ranking.py) and ranking metrics (metrics.py)."""

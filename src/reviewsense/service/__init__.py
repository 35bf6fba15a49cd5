"""`reviewsense serve`: the real-time review service (FastAPI) and its dashboard."""

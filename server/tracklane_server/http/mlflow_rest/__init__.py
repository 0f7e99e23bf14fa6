"""MLflow's REST API on the HTTP listener (see app.py)."""

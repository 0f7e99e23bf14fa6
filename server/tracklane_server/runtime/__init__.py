"""What the server runs on besides the services: memory budgets (and, later, pools and sweepers)."""

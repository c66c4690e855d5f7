"""Scenario files, and the scripts that run them against a real router (README,
"Routing quality")."""

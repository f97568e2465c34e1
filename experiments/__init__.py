"""The experiment runner: specs in ablations/, stages tracked in MLflow, sweeps in Optuna, Markdown reports.

``python -m experiments --help`` shows how to use it; ``experiments/README.md`` the contracts.
"""

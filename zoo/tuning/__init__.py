"""``zoo tune``: hyper-parameter search on Optuna, each trial an ordinary run directory."""

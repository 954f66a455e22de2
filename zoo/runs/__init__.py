"""Runs on disk: the run options (RunConfig), the run directory, reading finished runs."""

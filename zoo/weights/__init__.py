"""Trained weights: named entries, loading without Lightning, export, and the Hugging Face Hub."""

"""Comparisons: activations x seeds planned, trained fused or separately, tested, reported,
launched."""

"""Training one run: its composition, the LightningModule, recipes, checks, callbacks,
checkpoints, evaluation."""

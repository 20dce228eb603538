"""Eval: held-out metrics of the base and the tuned model, side by side."""

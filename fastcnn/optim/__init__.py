"""Optimizers (update rules over parameters) and learning-rate schedules."""

"""Evaluation: folds, metrics, the offline replay and the per-window backtest. It uses the
recommenders, never the reverse.
"""

"""Recommenders: the click log they learn from, the simple recommenders the product uses as
fallbacks and baselines, co-visitation and ALS, the article model that is published, and top-k.
"""

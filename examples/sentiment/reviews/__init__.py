"""Sentiment of one review sentence: the smallest useful classifier."""

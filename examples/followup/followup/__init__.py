"""Sentiment of a follow-up message, which only the conversation before it can tell."""

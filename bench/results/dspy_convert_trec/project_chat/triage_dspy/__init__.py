"""Converted from dspy_convert_trec_program.py by `promptcast from-dspy`."""

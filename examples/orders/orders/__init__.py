"""Read the order out of a customer's message: a structured-extraction example."""

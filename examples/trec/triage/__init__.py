"""A TREC question-type classifier: the first example of DESIGN §1."""

"""Count the objects of one kind named in a sentence (BIG-bench object_counting)."""

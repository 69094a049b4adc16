"""A ReAct agent over a small table, with a calculator: both tools are plain Python."""

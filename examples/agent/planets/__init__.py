"""A ReAct agent over a small planet table, with a calculator: both tools are plain Python."""

"""`python -m promptcast ...` is the `promptcast` command."""

from promptcast.cli import main

main()

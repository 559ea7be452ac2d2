"""`python -m llmledger` runs the CLI."""

from llmledger.cli import main

main()

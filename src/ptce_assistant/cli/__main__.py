"""`python -m ptce_assistant.cli`: the same as the `ptce` command."""

from ptce_assistant.cli import main

main()

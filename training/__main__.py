"""`python -m training` is the `recsys` command (useful where the script is not on PATH)."""

from training.cli import main

main()

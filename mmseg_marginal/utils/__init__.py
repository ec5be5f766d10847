"""Helpers of the command-line tools: pre-run checks, CPU launching, Cityscapes submission."""

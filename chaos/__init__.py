"""The chaos harness: real worker processes killed at random while a mixed load runs."""

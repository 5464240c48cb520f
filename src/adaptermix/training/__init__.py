"""One training loop and one evaluation path for every adapter method."""

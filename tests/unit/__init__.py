"""Fast unit tests of the pure layers (no server, no network): a failure names a function."""

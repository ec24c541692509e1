"""The fault matrix: every dialect, streamed or not, on both surfaces, against upstream,
client and process failures (issue 12)."""

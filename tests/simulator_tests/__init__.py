"""Tests of the strict upstream simulator (tests/simulator), one module per simulator part."""

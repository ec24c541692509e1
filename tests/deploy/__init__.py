"""Deployment tests: the shipped nginx, systemd and Docker files, exercised for real."""

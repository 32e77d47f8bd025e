"""The central server's tests."""

"""The camera (edge) service's tests."""

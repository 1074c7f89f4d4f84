"""Session Lab's load test, chaos and experiment runner."""

"""The project manager's client of Label Studio: publish, status and collect."""

"""The recommendation web service: loads exported artifacts and serves them over HTTP."""

"""Registry operations with no HTTP in them: the handlers' only collaborators."""

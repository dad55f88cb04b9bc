"""Hub-managed services (the culler; later backup and credentials) and their common ground."""

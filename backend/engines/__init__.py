"""Frame generators: each turns a subject and target landmarks into an image."""

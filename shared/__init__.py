"""Code shared by the backend and the Blender add-on: pure Python + numpy."""

"""Foundations every other package uses: argument validation, the Keras config protocol,
fastcnn's exceptions and its random state. Imports nothing else from fastcnn."""

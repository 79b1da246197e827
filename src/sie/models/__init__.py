"""Backbone, heads, loss terms, online probes, the method registry and the model files.

Importing the package imports nothing else: ``sie.models.registry`` (the methods as data) stays
importable without torch. The models are in ``sie.models.methods``.
"""

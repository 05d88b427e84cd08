"""TensorFlow Recommenders model code: feature contract, towers and the retrieval model.

Imported by `training/` only; the app loads exported SavedModels instead.
"""

"""The offline side: data loading, training, evaluation, export and the `recsys` CLI."""

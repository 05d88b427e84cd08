"""`recsys bench`: measure the service and the index as users run them, against a
baseline measured in the same run."""

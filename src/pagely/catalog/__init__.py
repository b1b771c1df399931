"""The bookstore: books, tags, search, reviews with rating aggregates, and the caches in front."""

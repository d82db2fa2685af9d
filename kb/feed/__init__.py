"""The daily arXiv habit: announcement feeds, ranking from the user's catalog, decisions, reviews."""

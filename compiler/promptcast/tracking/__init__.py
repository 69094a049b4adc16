"""Optional run tracking (`mlflow`): imported only when a command is asked to track a run."""

"""The operator's web console (`:3000/console`): server-rendered pages over the other services' APIs."""

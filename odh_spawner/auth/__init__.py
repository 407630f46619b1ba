"""Who may log in: the local user file (`users`), password hashing (`passwords`), and JupyterHub's
authenticator over them (`authenticator`). Imports only the shared basics."""

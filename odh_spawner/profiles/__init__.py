"""What admins offer and what a user may ask for: the profile file's format and validation (`format`), the pure
resolution of (profiles, user, options) into a SpawnPlan (`resolve`), the spawn form (`form`, with `templates/`), the features a profile may leave out (`features`),
and the profile store that re-reads the file without a hub restart (`store`). Pure, except `store`'s reads.
Imports only the shared basics."""

"""odh-hub, notebook side (server extension, client, widgets): arrives with the bucket-browsing issue."""

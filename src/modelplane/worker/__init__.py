"""A replica: one process with one model loaded, serving frames over a local socket."""

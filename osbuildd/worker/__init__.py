"""``osbuildd worker``: a remote worker of an osbuild-composer (or osbuildd) worker API.

``config`` reads osbuild-worker.toml and the command line into :class:`WorkerSettings`; ``auth``
is the OAuth2 client; ``client`` speaks the worker protocol (with retries); ``jobs`` runs one
job of each kind; ``main`` holds the state dir and runs the loops.
"""

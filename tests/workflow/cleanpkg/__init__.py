"""A user's package for workflow tests: a 1/f-noise-style cleaner, registered through a real
``jwpipe.steps`` entry point by the tests (a dist-info directory on the path), never listed in
JWPIPE_ALLOW_IMPORT."""

"""The ``jwpipe`` command line."""

"""One contract suite, run against every implementation of each pluggable interface."""

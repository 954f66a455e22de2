"""Gates on third-party internals: each module uses one library's private API, on the versions it
was checked against."""

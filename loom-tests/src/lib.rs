//! Loom models of hotbreaker live in `tests/`; this library is empty.

//! Load generator and emulated inference replica. Planned: see issue "Real load generator".

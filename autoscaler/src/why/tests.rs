//! Tests of the "why" sentences.

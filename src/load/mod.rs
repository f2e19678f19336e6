//! The load generator `percore-load` (the seed's "Load Generator" box).

//! The control plane: one unpinned executor that serves no connection. It
//! starts the shards ([`supervisor`]), restarts the ones that die, merges
//! their figures for the metrics endpoints and orders the drain ([`run`]).
//! It talks to the shards only through [`messages`].

pub mod messages;
pub mod run;
pub mod supervisor;
